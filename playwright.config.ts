import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "@playwright/test";

/**
 * End-to-end: the real product (`scripts/start.ts`: embedded Postgres, migrations, one
 * agent reading this host's kernel files, the built dashboard) driven by Debian's
 * Chromium. Ports and data directory are separate from a developer's `npm start`.
 */
export const e2e = {
  dataDir: process.env.MIRRORPLANE_E2E_DATA_DIR ?? join(tmpdir(), "mirrorplane-e2e"),
  webPort: 3107,
  agentPort: 7467,
  pgPort: 54337,
};

export default defineConfig({
  testDir: "e2e",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: process.env.PLAYWRIGHT_JSON_OUTPUT_FILE ? [["list"], ["json"]] : [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${e2e.webPort}`,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
      ],
    },
    trace: "off",
  },
  webServer: {
    command: "npx tsx scripts/start.ts",
    url: `http://127.0.0.1:${e2e.webPort}/nodes`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: "ignore",
    stderr: "pipe",
    gracefulShutdown: { signal: "SIGTERM", timeout: 20_000 },
    env: {
      MIRRORPLANE_DATA_DIR: e2e.dataDir,
      MIRRORPLANE_WEB_PORT: String(e2e.webPort),
      MIRRORPLANE_AGENT_PORT: String(e2e.agentPort),
      MIRRORPLANE_PG_PORT: String(e2e.pgPort),
      MIRRORPLANE_SAMPLE_INTERVAL_MS: "1000",
      MIRRORPLANE_SKIP_BUILD: "1",
    },
  },
});
