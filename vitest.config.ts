import { defineConfig } from "vitest/config";

// One vitest run covers every package: `projects` keeps each package's own config while
// `npm test` stays one command. The global setup starts one real (embedded) Postgres.
export default defineConfig({
  test: {
    globalSetup: ["./test/global-setup.ts"],
    projects: [
      "packages/*/vitest.config.ts",
      "apps/*/vitest.config.ts",
      "scripts/vitest.config.ts",
      "test/web-agent/vitest.config.ts",
    ],
  },
});
