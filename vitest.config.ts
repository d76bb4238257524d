import { defineConfig } from "vitest/config";

// One vitest run covers every package: `projects` keeps each package's own config
// (environment, global setup) while `npm test` stays a single command.
export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "apps/*/vitest.config.ts"],
  },
});
