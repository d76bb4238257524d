import { fileURLToPath } from "node:url";
import { defineProject } from "vitest/config";

// The dashboard's server against real agents (their API in-process, or the agent's CLI) and
// real Postgres. Here, not in apps/web, because the dashboard does not depend on the
// daemon: it knows agents only through @mirrorplane/contracts. These tests hold both sides.
const web = (path: string) => fileURLToPath(new URL(`../../apps/web/${path}`, import.meta.url));

export default defineProject({
  resolve: { alias: { "~": web("src") } },
  test: {
    name: "web-agent",
    root: fileURLToPath(new URL(".", import.meta.url)),
    include: ["**/*.test.ts"],
    testTimeout: 30_000,
    // `server-only` throws outside React Server Components; tests run server code directly.
    alias: { "server-only": web("test/server-only.ts") },
  },
});
