import { fetchRequestHandler } from "@trpc/server/adapters/fetch";
import { env } from "~/env";
import { sessionUser } from "~/server/auth";
import { clientAddress, type TrustedProxies, trustedProxies } from "~/server/client-address";
import { db } from "~/server/db";
import { requestOrigin, trustedOriginSet } from "~/server/origin-check";
import { appRouter } from "~/server/root";
import { serverRuntime } from "~/server/runtime";
import { createContextInner } from "~/server/trpc";

export const dynamic = "force-dynamic";

let origins: Set<string> | undefined;
let proxies: TrustedProxies | undefined;

function handler(req: Request) {
  return fetchRequestHandler({
    endpoint: "/api/trpc",
    req,
    router: appRouter,
    createContext: async () => {
      // The agent directory and the live hub come from the composition root.
      const { agents, hub } = serverRuntime();
      origins ??= trustedOriginSet([
        env().MIRRORPLANE_PUBLIC_URL,
        ...env().MIRRORPLANE_TRUSTED_ORIGINS,
      ]);
      proxies ??= trustedProxies(env().MIRRORPLANE_TRUSTED_PROXIES);
      const user = await sessionUser(req.headers);
      return createContextInner({
        db: db(),
        agents,
        now: () => new Date(),
        user,
        live: hub,
        request: {
          origin: requestOrigin(req.headers, origins),
          client: clientAddress(req.headers, proxies),
        },
      });
    },
    onError: ({ error, path }) => {
      if (error.code === "INTERNAL_SERVER_ERROR") console.error(`tRPC ${path}:`, error);
    },
  });
}

export { handler as GET, handler as POST };
