import { defineProject } from "vitest/config";

// Property tests run hundreds of cases; on a loaded 2-core machine (QEMU beside them) one
// took 6.9 s against vitest's 5 s default. The limit only catches hangs; it is no speed check.
export default defineProject({
  test: { name: "clusterlog", include: ["src/**/*.test.ts"], testTimeout: 60_000 },
});
