import { describe, expect, it } from "vitest";
import { performLogIo } from "./block-device.ts";
import type { ResyncOperation } from "./operations.ts";
import { countInSync, resyncDone } from "./resync.ts";
import { A, B, Harness, U } from "./test-support.ts";

// Operator resync control as an ordered operation (issue 5): a range goes out of sync in
// the total order, the recovery cursor restarts, pause stops only the sequential sweep,
// cancel restores exactly what the resync itself made out of sync.

const NOSYNC_8 = "8192 clustered-core 1024 nosync"; // 8 regions, all in sync

function resync(h: Harness, op: ResyncOperation) {
  const result = h.log.apply({ kind: "resync", resync: op });
  // Its log write (a start writes the range not clean at once) completes like any I/O.
  for (const io of result.io) h.driver.submit(performLogIo(io, h.device(io.logDevice)));
  return result.resync;
}

function synced(h: Harness): number[] {
  const g = h.log.state.groups.get(U)!;
  return [...Array(g.regionCount).keys()].filter((r) => g.syncBits.test(r));
}

describe("operator resync (ordered operation)", () => {
  it("start makes the range out of sync and not clean, and recovery restarts at it", () => {
    const h = new Harness();
    h.up(A, NOSYNC_8);
    expect(h.syncCount(A)).toBe(8);
    expect(h.resyncWork(A)[0]).toBe(0); // fully in sync: no work (cursor at rc + 1)
    expect(resync(h, { action: "start", uuid: U, id: "r1", first: 2, last: 4 })).toEqual({
      ok: true,
      regions: 3,
    });
    expect(synced(h)).toEqual([0, 1, 5, 6, 7]);
    expect(h.isClean(A, 3)).toBe(0);
    expect(h.inSync(A, 3)).toBe(0); // the sticky in_sync (P13) no longer hides it
    expect(h.resyncWork(A)).toEqual([1, 2]);
    h.setRegionSync(A, 2, true);
    expect(h.resyncWork(A)).toEqual([1, 3]);
    h.setRegionSync(A, 3, true);
    expect(resyncDone(h.log.state.groups.get(U)!)).toBe(false);
    expect(h.resyncWork(A)).toEqual([1, 4]);
    h.setRegionSync(A, 4, true);
    expect(h.log.state.groups.get(U)!.resync).toBeNull(); // done: cleared in the order
    expect(h.syncCount(A)).toBe(8);
  });

  it("the disk log records the range dirty at the start, not at the next flush", () => {
    const h = new Harness();
    h.up(A, "8192 clustered-disk 7:0 1024 nosync");
    expect(h.diskBit(3)).toBe(1);
    resync(h, { action: "start", uuid: U, id: "r1", first: 3, last: 3 });
    expect(h.diskBit(3)).toBe(0);
    expect(h.flush(A).error).toBe(0);
    expect(h.diskBit(3)).toBe(0);
  });

  it("a second resync while one runs is refused; a whole-mirror resync needs no range", () => {
    const h = new Harness();
    h.up(A, NOSYNC_8);
    expect(resync(h, { action: "start", uuid: U, id: "r1" })).toEqual({ ok: true, regions: 8 });
    expect(resync(h, { action: "start", uuid: U, id: "r2" })).toEqual({
      ok: false,
      reason: "busy",
    });
    expect(resync(h, { action: "start", uuid: "LVM-none", id: "r3" })).toEqual({
      ok: false,
      reason: "no-such-log",
    });
  });

  it("pause stops the sweep but not a region a write waits on (priority list)", () => {
    const h = new Harness();
    h.up(A, NOSYNC_8);
    resync(h, { action: "start", uuid: U, id: "r1", first: 0, last: 7 });
    resync(h, { action: "pause", uuid: U, id: "r1" });
    expect(h.resyncWork(A)[0]).toBe(0);
    expect(h.remoteRecovering(A, 6)[0]).toBe(1); // a write blocked on region 6
    expect(h.resyncWork(A)).toEqual([1, 6]);
    h.setRegionSync(A, 6, true);
    expect(h.resyncWork(A)[0]).toBe(0);
    resync(h, { action: "unpause", uuid: U, id: "r1" });
    expect(h.resyncWork(A)).toEqual([1, 0]);
  });

  it("a throttle's allowance caps the sweep's hand-outs per window on every node", () => {
    const h = new Harness();
    h.up(A, NOSYNC_8);
    h.up(B, NOSYNC_8, 0x2222n);
    resync(h, { action: "start", uuid: U, id: "r1", first: 0, last: 7 });
    h.suspendResume(A); // both kernels' hints re-armed (hint guard), as the agent does
    h.suspendResume(B, 0x2222n);
    expect(resync(h, { action: "allow", uuid: U, id: "r1", regions: 2 })).toEqual({
      ok: true,
      regions: 0,
    });
    expect(h.resyncWork(A)).toEqual([1, 0]);
    h.setRegionSync(A, 0, true);
    expect(h.resyncWork(B)).toEqual([1, 1]); // another node spends the same allowance
    h.setRegionSync(B, 1, true);
    expect(h.resyncWork(A)[0]).toBe(0); // spent: nothing more this window, for anyone
    expect(h.resyncWork(B)[0]).toBe(0);
    expect(h.remoteRecovering(A, 6)[0]).toBe(1); // a write waits on 6: never throttled
    expect(h.resyncWork(A)).toEqual([1, 6]);
    h.setRegionSync(A, 6, true);
    // The next window: a fresh allowance, not added to an unspent one.
    resync(h, { action: "allow", uuid: U, id: "r1", regions: 1 });
    expect(h.resyncWork(B)).toEqual([1, 2]);
    h.setRegionSync(B, 2, true);
    expect(h.resyncWork(A)[0]).toBe(0);
    // Replicas agree on it: a snapshot carries the allowance.
    const copy = h.log.snapshot();
    const group = h.log.state.groups.get(U)!;
    expect(group.resync?.allowance).toBe(0);
    resync(h, { action: "allow", uuid: U, id: "r1", regions: null }); // the limit lifted
    expect(h.resyncWork(A)).toEqual([1, 3]);
    expect(h.log.snapshot()).not.toEqual(copy);
    expect(resync(h, { action: "allow", uuid: U, id: "r1", regions: -1 })).toEqual({
      ok: false,
      reason: "bad-range",
    });
  });

  it("cancel declares nothing in sync: the sweep stops until the next resume", () => {
    const h = new Harness();
    h.up(A, NOSYNC_8);
    h.up(B, NOSYNC_8, 0x2222n);
    resync(h, { action: "start", uuid: U, id: "r1", first: 0, last: 7 });
    // B saw the full sync count: until its kernel is re-armed, its hint (rc) holds the
    // range back (hint guard), as the armed start does in the agent.
    expect(h.resyncWork(A)).toEqual([0, 0]);
    h.suspendResume(B, 0x2222n);
    expect(h.resyncWork(A)).toEqual([1, 0]);
    h.setRegionSync(A, 0, true);
    expect(resync(h, { action: "cancel", uuid: U, id: "r1" })).toEqual({ ok: true, regions: 7 });
    expect(synced(h)).toEqual([0]);
    expect(h.resyncWork(A)[0]).toBe(0); // sweep held
    expect(h.remoteRecovering(A, 5)[0]).toBe(1); // a write needs region 5: recovered anyway
    expect(h.resyncWork(A)).toEqual([1, 5]);
    h.setRegionSync(A, 5, true);
    h.postsuspend(B, 0x2222n);
    h.resume(B, 0x2222n); // a resume: the sweep goes on
    expect(h.resyncWork(A)).toEqual([1, 1]);
  });

  it("an armed start hands out nothing, not even a region a write waits on, until unpaused", () => {
    const h = new Harness();
    h.up(A, NOSYNC_8);
    resync(h, { action: "start", uuid: U, id: "r1", first: 2, last: 3, armed: true });
    expect(h.remoteRecovering(A, 2)[0]).toBe(1);
    expect(h.resyncWork(A)[0]).toBe(0);
    resync(h, { action: "unpause", uuid: U, id: "r1" });
    expect(h.resyncWork(A)).toEqual([1, 2]);
  });

  it("an armed start is disarmed by a member's resume: the kernel asks once after it, and must get the work", () => {
    // Kernel lab: dm-raid1 asks GET_RESYNC_WORK right after its resume and, answered
    // "none", never again on an idle mirror — an armed start waited forever.
    const h = new Harness();
    h.up(A, NOSYNC_8);
    resync(h, { action: "start", uuid: U, id: "r1", first: 2, last: 3, armed: true });
    expect(h.resyncWork(A)[0]).toBe(0);
    h.suspendResume(A); // the agent's own re-arm (dmsetup suspend + resume)
    expect(h.log.state.groups.get(U)!.resync?.armed).toBe(false);
    expect(h.resyncWork(A)).toEqual([1, 2]);
  });

  it("a finished resync is cleared, so the log takes another", () => {
    const h = new Harness();
    h.up(A, NOSYNC_8);
    resync(h, { action: "start", uuid: U, id: "r1", first: 6, last: 6 });
    expect(h.resyncWork(A)).toEqual([1, 6]);
    h.setRegionSync(A, 6, true);
    expect(h.log.state.groups.get(U)!.resync).toBeNull();
    expect(resync(h, { action: "start", uuid: U, id: "r2", first: 1, last: 1 })).toEqual({
      ok: true,
      regions: 1,
    });
  });

  it("cancel or pause of an unknown resync id is refused", () => {
    const h = new Harness();
    h.up(A, NOSYNC_8);
    resync(h, { action: "start", uuid: U, id: "r1", first: 0, last: 1 });
    expect(resync(h, { action: "cancel", uuid: U, id: "other" })).toEqual({
      ok: false,
      reason: "no-such-resync",
    });
  });

  it("countInSync counts a range word at a time", () => {
    const h = new Harness();
    h.up(A, "102400 clustered-core 1024 nosync"); // 100 regions
    resync(h, { action: "start", uuid: U, id: "r1", first: 30, last: 69 });
    const g = h.log.state.groups.get(U)!;
    expect(countInSync(g.syncBits, 0, 99)).toBe(60);
    expect(countInSync(g.syncBits, 25, 34)).toBe(5);
    expect(countInSync(g.syncBits, 31, 31)).toBe(0);
    expect(countInSync(g.syncBits, 64, 95)).toBe(26);
  });
});
