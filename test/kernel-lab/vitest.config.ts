import { defineConfig } from "vitest/config";

// The kernel lab (docs/KERNEL-LAB.md): tests that boot Debian's kernel under QEMU. Its own
// run, after the unit and integration tests (scripts/test.ts), one file at a time: each
// test boots VMs that take both cores. Limits only catch a hung VM; lab.ts kills a VM that
// outlives its own timeout first, with a message.
export default defineConfig({
  test: {
    name: "kernel-lab",
    root: new URL("../..", import.meta.url).pathname,
    include: ["test/kernel-lab/**/*.lab.test.ts"],
    fileParallelism: false,
    testTimeout: 25 * 60_000,
    hookTimeout: 10 * 60_000,
  },
});
