import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_LOGS, DEFAULT_MAX_REGIONS } from "./cluster-state.ts";
import { encodeAscii } from "./codec.ts";
import { A, B, Harness } from "./test-support.ts";

// Issue 15, hole 4/5: a CTR of 2^31 regions was accepted (2.75 GB, a 512 MiB snapshot),
// and the number of logs was unbounded. Both are limits of the core now, the same on every
// replica, with errnos the kernel returns from the table load.

describe("log limits (issue 15)", () => {
  it("refuses a CTR of more regions than the limit with -EINVAL and constructs nothing", () => {
    const h = new Harness();
    expect(DEFAULT_MAX_REGIONS).toBe(2 ** 24);
    const huge = `${2 ** 31 * 1024} clustered-core 1024`;
    expect(h.ctr(A, huge).error).toBe(-22);
    expect(h.log.state.instances.size).toBe(0);
    expect(h.log.explainCtrLimit(A, encodeAscii(huge))).toMatch(
      /2147483648 regions is more than the limit of 16777216 per log/,
    );
    // At the limit it is accepted.
    expect(h.ctr(A, `${2 ** 24 * 1024} clustered-core 1024`).error).toBe(0);
  });

  it("the region limit is an option", () => {
    const h = new Harness({ maxRegions: 100 });
    expect(h.ctr(A, `${101 * 1024} clustered-core 1024`).error).toBe(-22);
    expect(h.ctr(A, `${100 * 1024} clustered-core 1024`).error).toBe(0);
  });

  it("refuses one log more than the limit per node with -ENOSPC; a re-CTR and other nodes are not counted", () => {
    expect(DEFAULT_MAX_LOGS).toBe(1024);
    const h = new Harness({ maxLogs: 2 });
    const args = "4096 clustered-core 1024";
    expect(h.ctr(A, args, { luid: 1n }).error).toBe(0);
    expect(h.ctr(A, args, { luid: 2n }).error).toBe(0);
    expect(h.ctr(A, args, { luid: 3n }).error).toBe(-28);
    expect(h.log.explainCtrLimit(A, encodeAscii(args))).toMatch(/limit of 2 logs/);
    // The kernel's re-CTR of an existing log (same arguments) still succeeds (P4).
    expect(h.ctr(A, args, { luid: 2n, nul: true }).error).toBe(0);
    expect(h.ctr(B, args, { luid: 1n }).error).toBe(0);
    // After a DTR there is room again.
    expect(h.dtr(A, 1n).error).toBe(0);
    expect(h.ctr(A, args, { luid: 3n }).error).toBe(0);
  });
});
