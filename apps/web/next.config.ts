import type { NextConfig } from "next";
import { apiContentSecurityPolicy, commonSecurityHeaders } from "./src/lib/security-headers";

const config: NextConfig = {
  // Workspace packages ship TypeScript source ("just-in-time" packages).
  transpilePackages: ["@mirrorplane/db", "@mirrorplane/agent"],
  // Node-only drivers stay out of the server bundle and load from node_modules.
  serverExternalPackages: ["pg", "@prisma/adapter-pg", "@prisma/client"],
  poweredByHeader: false,
  // Server-sent events must not be buffered by gzip; put compression in the reverse proxy.
  compress: false,
  typescript: { ignoreBuildErrors: true }, // `npm run typecheck` is the type gate
  async headers() {
    return [
      { source: "/:path*", headers: [...commonSecurityHeaders] },
      {
        source: "/api/:path*",
        headers: [{ key: "Content-Security-Policy", value: apiContentSecurityPolicy }],
      },
    ];
  },
};

export default config;
