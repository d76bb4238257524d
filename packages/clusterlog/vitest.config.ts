import { defineProject } from "vitest/config";

export default defineProject({
  test: { name: "clusterlog", include: ["src/**/*.test.ts"] },
});
