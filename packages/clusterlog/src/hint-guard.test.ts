import { describe, expect, it } from "vitest";
import { needsRearm } from "./hint-guard.ts";
import { A, B, C, Harness, U } from "./test-support.ts";

// The hint guard (hint-guard.ts): no region is handed out as resync work while another
// member's kernel may write it to the primary leg only, because its in_sync hint (spec
// §2.17) is above it. Found by the mirror simulator over JetStream (issue 5): survivors
// whose hint reached rc wrote a failed node's regions "nosync" while a third node copied
// them, and the legs ended different under regions called in sync.

const SYNCED = "8192 clustered-core 1024 nosync"; // 8 regions, all in sync
const RESYNC = "8192 clustered-core 1024"; // 8 regions, none in sync yet

const group = (h: Harness) => h.log.state.groups.get(U)!;
const bound = (h: Harness, node: number) =>
  [...h.log.state.instances.values()].find((i) => i.node === node)!.hintBound;

describe("the hint guard", () => {
  it("a survivor whose kernel saw the full sync holds a failed node's regions until re-armed", () => {
    const h = new Harness();
    for (const n of [A, B, C]) h.up(n, SYNCED);
    expect([A, B, C].map((n) => bound(h, n))).toEqual([8, 8, 8]);
    h.mark(C, [5]);
    h.log.apply({ kind: "node-failed", node: C });
    // B asks: A could write region 5 without asking; A asks: likewise B.
    expect(h.resyncWork(B)).toEqual([0, 0]);
    expect(h.resyncWork(A)).toEqual([0, 0]);
    expect([...group(h).staleHints].sort()).toEqual([A, B]);
    expect(needsRearm(h.log.state, A, U)).toBe(true);
    // A's agent suspends and resumes A's mirror (the kernel zeroes its hint): B may copy.
    h.suspendResume(A);
    expect(bound(h, A)).toBe(0);
    expect(needsRearm(h.log.state, A, U)).toBe(false);
    expect(h.resyncWork(B)).toEqual([1, 5]);
    // A writes region 5 now: it asks first, and waits (spec §2.17).
    expect(h.remoteRecovering(A, 5)).toEqual([1, 5]);
    h.setRegionSync(B, 5, true);
    expect(h.inSync(A, 5)).toBe(1);
  });

  it("the hint of an IS_REMOTE_RECOVERING answer replaces the last one", () => {
    const h = new Harness();
    h.up(A, RESYNC);
    h.up(B, RESYNC);
    for (let r = 0; r < 4; r++) {
      expect(h.resyncWork(A)).toEqual([1, r]);
      h.setRegionSync(A, r, true);
    }
    expect(h.remoteRecovering(B, 6)).toEqual([1, 3]);
    expect(bound(h, B)).toBe(3);
    // Region 1 goes out of sync again (a write failed on a leg, from A's kernel).
    h.setRegionSync(A, 1, false);
    // A's own recovery of region 1 would be safe from B only if B's hint were ≤ 1.
    expect(h.remoteRecovering(A, 1)).toEqual([1, 3]);
    expect(h.resyncWork(A)).toEqual([0, 0]);
    expect([...group(h).staleHints]).toEqual([B]);
    // The cursor went back to region 1, so B's next answer no longer covers it…
    expect(h.remoteRecovering(B, 2)).toEqual([0, 0]);
    expect(bound(h, B)).toBe(0);
    expect(group(h).staleHints.size).toBe(0);
    // …and region 1 is handed out without a suspend (no re-arm loop).
    expect(h.resyncWork(A)).toEqual([1, 1]);
  });

  it("the -ESRCH re-CTR keeps the kernel's hint, which we cannot know; a real resume zeroes it", () => {
    const h = new Harness();
    h.up(A, RESYNC);
    h.up(B, RESYNC);
    h.log.apply({ kind: "node-failed", node: B }); // B's agent restarted
    expect(h.ctr(B, RESYNC, { nul: true }).error).toBe(0); // the kernel's re-CTR form
    expect(h.resume(B).error).toBe(0); // sent without userspace_resume: hint unchanged
    expect(bound(h, B)).toBe(8);
    expect(h.resyncWork(A)).toEqual([0, 0]);
    expect(needsRearm(h.log.state, B, U)).toBe(true);
    h.suspendResume(B);
    expect(h.resyncWork(A)).toEqual([1, 0]);
  });

  it("a table load starts from hint 0, and one member alone is never held", () => {
    const h = new Harness();
    h.up(A, SYNCED);
    expect(bound(h, A)).toBe(8);
    h.log.apply({
      kind: "resync",
      resync: { action: "start", uuid: U, id: "r", first: 2, last: 3 },
    });
    expect(h.resyncWork(A)).toEqual([1, 2]);
    h.up(B, SYNCED); // joins a group not in sync: its kernel starts at 0
    expect(bound(h, B)).toBe(0);
    h.setRegionSync(A, 2, true);
    expect(h.resyncWork(A)).toEqual([1, 3]);
  });

  it("a region handed out from the priority list keeps every later hint at or below it", () => {
    const h = new Harness();
    h.up(A, RESYNC);
    h.up(B, RESYNC);
    for (let r = 0; r < 6; r++) {
      expect(h.resyncWork(A)).toEqual([1, r]);
      h.setRegionSync(A, r, true);
    }
    h.setRegionSync(B, 2, false); // a leg write failed on B: region 2 out of sync again
    expect(h.remoteRecovering(B, 2)).toEqual([1, 5]);
    // B's hint (5) is above region 2: A may not copy it until B asks again.
    expect(h.resyncWork(A)).toEqual([0, 0]);
    expect(h.remoteRecovering(B, 2)).toEqual([1, 1]); // the cursor went back to 2
    expect(h.resyncWork(A)).toEqual([1, 2]);
    // While A copies region 2, B's writes elsewhere get hints that still make it ask for 2.
    expect(h.remoteRecovering(B, 7)[1]).toBeLessThanOrEqual(2);
  });

  it("work nobody will ask for: the lowest member is re-armed first, then the others", () => {
    const h = new Harness();
    for (const n of [A, B, C]) h.up(n, SYNCED);
    h.mark(B, [3]);
    h.log.apply({ kind: "node-failed", node: B }); // region 3 out of sync; hints are rc
    expect([A, C].map((n) => needsRearm(h.log.state, n, U))).toEqual([true, false]);
    h.suspendResume(A);
    expect([A, C].map((n) => needsRearm(h.log.state, n, U))).toEqual([false, false]);
    expect(h.resyncWork(A)).toEqual([0, 0]); // A asks now; C's hint holds region 3
    expect([A, C].map((n) => needsRearm(h.log.state, n, U))).toEqual([false, true]);
    h.suspendResume(C);
    expect(h.resyncWork(A)).toEqual([1, 3]);
  });

  it("no re-arm loop for work that is not there: a failed leg's region behind the cursor", () => {
    const h = new Harness();
    h.up(A, SYNCED);
    h.up(B, SYNCED);
    expect(h.resyncWork(A)).toEqual([0, 0]); // all in sync: the cursor passes rc
    h.setRegionSync(A, 2, false); // a write to a failed leg
    expect(needsRearm(h.log.state, A, U)).toBe(false);
    expect(needsRearm(h.log.state, B, U)).toBe(false);
  });

  it("a cancelled resync is not undone by a re-arm", () => {
    const h = new Harness();
    h.up(A, SYNCED);
    h.up(B, SYNCED);
    h.log.apply({
      kind: "resync",
      resync: { action: "start", uuid: U, id: "r", first: 0, last: 7 },
    });
    expect(needsRearm(h.log.state, A, U)).toBe(true);
    h.log.apply({ kind: "resync", resync: { action: "cancel", uuid: U, id: "r" } });
    expect(needsRearm(h.log.state, A, U)).toBe(false);
  });

  it("a member leaving takes its stale hint with it", () => {
    const h = new Harness();
    for (const n of [A, B, C]) h.up(n, SYNCED);
    h.mark(C, [1]);
    h.log.apply({ kind: "node-failed", node: C });
    expect(h.resyncWork(A)).toEqual([0, 0]);
    expect([...group(h).staleHints]).toEqual([B]);
    h.presuspend(B);
    h.postsuspend(B);
    expect(group(h).staleHints.size).toBe(0);
    expect(h.resyncWork(A)).toEqual([1, 1]);
  });
});
