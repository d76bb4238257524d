import { describe, expect, it } from "vitest";
import { ClusterLog } from "./cluster-log.ts";
import { encodeU64 } from "./codec.ts";
import { DM_ULOG_GET_RESYNC_WORK, DM_ULOG_SET_REGION_SYNC } from "./request-types.ts";
import { A, B, C, Harness } from "./test-support.ts";

const CORE = "4096 clustered-core 1024"; // 4 regions

describe("resync hand-out (spec §2.12–§2.14, §2.17)", () => {
  it("scenario 6 / P14: nosync core log is in sync and the hint reaches rc", () => {
    const h = new Harness();
    h.up(A, `${CORE} nosync`);
    expect(h.syncCount(A)).toBe(4);
    expect(h.inSync(A, 3)).toBe(1);
    expect(h.resyncWork(A)[0]).toBe(0);
    expect(h.remoteRecovering(A, 0)).toEqual([0, 4]);
  });

  it("scenario 7: sequential + priority resync (B stands for any other member)", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.up(B, CORE); // B's requests must come from a member of the log's group
    expect(h.syncCount(A)).toBe(0);
    expect(h.inSync(A, 0)).toBe(0);
    expect(h.remoteRecovering(A, 2)).toEqual([1, 0]);
    expect(h.resyncWork(A)).toEqual([1, 2]);
    expect(h.resyncWork(B)[0]).toBe(0);
    expect(h.resyncWork(A)).toEqual([1, 2]);
    h.setRegionSync(A, 2, true);
    expect(h.syncCount(A)).toBe(1);
    expect(h.resyncWork(B)).toEqual([1, 0]);
    h.setRegionSync(B, 0, true);
    expect(h.resyncWork(A)).toEqual([1, 1]);
    h.setRegionSync(A, 1, true);
    expect(h.resyncWork(A)).toEqual([1, 3]);
    h.setRegionSync(A, 3, true);
    expect(h.resyncWork(A)[0]).toBe(0);
    expect(h.syncCount(A)).toBe(4);
    expect(h.remoteRecovering(A, 3)).toEqual([0, 3]);
  });

  it("scenario 13: fixed-size replies have exactly their size", () => {
    const h = new Harness();
    h.up(A, CORE);
    const sizes = [
      [6, undefined, 8],
      [7, encodeU64(0), 8],
      [8, encodeU64(0), 8],
      [14, undefined, 8],
      [12, undefined, 16],
      [17, encodeU64(0), 16],
      [13, new Uint8Array(16), 0],
      [10, encodeU64(0), 0],
      [9, undefined, 0],
      [3, undefined, 0],
    ] as const;
    for (const [type, data, size] of sizes) {
      const reply = h.send(A, type, data);
      expect([type, reply.error, reply.payload.length]).toEqual([type, 0, size]);
    }
    for (const [type, size] of [
      [4, 0],
      [5, 0],
      [2, 0],
    ] as const) {
      const reply = h.send(A, type);
      expect([type, reply.error, reply.payload.length]).toEqual([type, 0, size]);
    }
  });

  it("scenario 24 / P1: resent SET_REGION_SYNC counts once, resent GET_RESYNC_WORK returns the same region", () => {
    const h = new Harness();
    h.up(A, "8192 clustered-core 1024");
    const before = h.syncCount(A);
    h.setRegionSync(A, 4, true);
    h.setRegionSync(A, 4, true);
    expect(h.syncCount(A)).toBe(before + 1);
    const first = h.resyncWork(A);
    expect(h.resyncWork(A)).toEqual(first);
  });

  it("P28 [REC]: SET_REGION_SYNC for another region does not free the recovery slot", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.up(B, CORE);
    expect(h.resyncWork(A)).toEqual([1, 0]);
    h.setRegionSync(B, 3, false); // B reports a write failure elsewhere
    expect(h.resyncWork(B)[0]).toBe(0); // region 0 is not handed to a second node
    h.setRegionSync(A, 0, true);
    expect(h.resyncWork(B)).toEqual([1, 1]);
  });

  it("P13: IN_SYNC stays 1 after full sync even if a sync bit is cleared, until resume", () => {
    const h = new Harness();
    h.up(A, CORE);
    for (let r = 0; r < 4; r++) h.setRegionSync(A, r, true);
    h.setRegionSync(A, 2, false);
    expect(h.inSync(A, 2)).toBe(1);
    expect(h.syncCount(A)).toBe(3);
    h.postsuspend(A);
    h.resume(A);
    expect(h.inSync(A, 2)).toBe(0);
  });

  it("P31: a nosync log's count is exactly rc before and after the first resume", () => {
    const h = new Harness();
    h.ctr(A, "4097 clustered-core 1024 nosync"); // 5 regions: padding in the same word
    expect(h.syncCount(A)).toBe(5);
    h.resume(A);
    expect(h.syncCount(A)).toBe(5);
  });

  it("IS_REMOTE_RECOVERING queues a region once and never the one being recovered", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.up(B, CORE);
    expect(h.resyncWork(A)).toEqual([1, 0]);
    h.remoteRecovering(B, 0);
    h.remoteRecovering(B, 3);
    h.remoteRecovering(B, 3);
    const group = h.log.state.groups.get("LVM-test")!;
    expect(group.recoveryRequests).toEqual([3]);
    h.setRegionSync(A, 0, true);
    expect(h.resyncWork(B)).toEqual([1, 3]);
  });

  it("bad payload sizes are -EINVAL", () => {
    const h = new Harness();
    h.up(A, CORE);
    expect(h.send(A, DM_ULOG_SET_REGION_SYNC, new Uint8Array(8)).error).toBe(-22);
    expect(h.send(A, 17, new Uint8Array(0)).error).toBe(-22);
    expect(h.send(A, DM_ULOG_GET_RESYNC_WORK).error).toBe(0);
    expect(h.setRegionSync(A, 4, true).error).toBe(-22);
  });
});

// [REC] deliberate deviation from cmirrord (spec §2.13, §3.5, §4.5): a write ordered while
// a region is being recovered may land on one leg after the recoverer copied it, so the
// recoverer's SET_REGION_SYNC(R, 1) must not call that region in sync.
describe("a recovery raced by a write is not trusted (spec §2.13, §3.5, §4.5 [REC])", () => {
  const SYNCED = "4096 clustered-core 1024 nosync"; // 4 regions, all in sync and clean
  const group = (h: Harness) => h.log.state.groups.get("LVM-test")!;

  /** A, B and C up; region 2 made out of sync by C's failure and handed out to B. */
  function recoveringTwo(): Harness {
    const h = new Harness();
    h.up(A, SYNCED);
    h.up(B, SYNCED);
    h.up(C, SYNCED);
    h.mark(C, [2]);
    h.log.apply({ kind: "node-failed", node: C }); // §4.5 [REC]: 2 goes out of sync
    expect(h.inSync(A, 2)).toBe(0);
    // A's kernel saw the full sync count: its hint (rc) lets it write region 2 to the
    // primary leg only. Nothing is handed out until it is re-armed (hint guard).
    expect(h.resyncWork(B)).toEqual([0, 0]);
    expect([...group(h).staleHints]).toEqual([A]);
    h.suspendResume(A);
    expect(group(h).staleHints.size).toBe(0);
    expect(h.resyncWork(B)).toEqual([1, 2]);
    return h;
  }

  it("a MARK of the region by another node during the recovery keeps it out of sync", () => {
    const h = recoveringTwo();
    const before = h.syncCount(A);
    // A passed IS_REMOTE_RECOVERING(2) before C failed; its MARK is ordered now.
    expect(h.mark(A, [2]).error).toBe(0);
    expect(h.setRegionSync(B, 2, true).error).toBe(0); // wire reply unchanged: success
    expect(h.inSync(A, 2)).toBe(0);
    expect(h.syncCount(A)).toBe(before);
    expect(h.remoteRecovering(A, 2)[0]).toBe(1); // writers keep waiting
    h.clear(B, [2]); // the recoverer's post-recovery clear cannot clean it (P9)
    expect(h.isClean(A, 2)).toBe(0);
    // Handed out again, but only after A's mark is gone (its write may still be in flight).
    expect(h.resyncWork(B)[0]).toBe(0);
    h.clear(A, [2]);
    expect(h.isClean(A, 2)).toBe(0);
    expect(h.resyncWork(B)).toEqual([1, 2]);
    h.setRegionSync(B, 2, true);
    expect(h.inSync(A, 2)).toBe(1);
    h.clear(B, [2]);
    expect(h.isClean(A, 2)).toBe(1);
  });

  it("integrated FLUSH marks invalidate the recovery as well (P7)", () => {
    const h = recoveringTwo();
    expect(h.flush(A, [2]).error).toBe(0);
    h.setRegionSync(B, 2, true);
    expect(h.inSync(A, 2)).toBe(0);
  });

  it("the writer failing after its MARK: the region is resynced again (the simulation's seed 7146)", () => {
    const h = recoveringTwo();
    h.mark(A, [2]);
    h.log.apply({ kind: "node-failed", node: A });
    h.setRegionSync(B, 2, true);
    expect(h.inSync(B, 2)).toBe(0);
    // A's marks went with it: the region is handed out again at once, before region 3.
    expect(h.resyncWork(B)).toEqual([1, 2]);
    h.setRegionSync(B, 2, true);
    expect(h.inSync(B, 2)).toBe(1);
  });

  it("the writer suspending cleanly after its MARK: the region is resynced again", () => {
    const h = recoveringTwo();
    h.mark(A, [2]);
    h.postsuspend(A);
    h.setRegionSync(B, 2, true);
    expect(h.inSync(B, 2)).toBe(0);
    expect(h.resyncWork(B)).toEqual([1, 2]);
  });

  it("the recoverer asking again still gets its region; a failed recovery (0) is not retried", () => {
    const h = recoveringTwo();
    h.mark(A, [2]);
    expect(h.resyncWork(B)).toEqual([1, 2]); // kernel retransmission (P1)
    expect(h.resyncWork(A)[0]).toBe(0); // still one recovery at a time (§3.3)
    h.setRegionSync(B, 2, false);
    expect(group(h).recoveringRegion).toBe(-1);
    expect(group(h).recoveryInvalidated).toBe(false);
    h.clear(A, [2]);
    expect(h.resyncWork(B)[0]).toBe(0); // §2.12: a failed recovery waits for the next resume
  });

  it("the invalidation is part of the snapshot, so a joiner agrees", () => {
    const h = recoveringTwo();
    h.mark(A, [2]);
    const restored = ClusterLog.fromSnapshot(h.log.snapshot());
    if (!restored.ok) throw new Error(restored.error.message);
    expect(restored.value.state.groups.get("LVM-test")!.recoveryInvalidated).toBe(true);
    expect(restored.value.snapshot()).toEqual(h.log.snapshot());
  });

  it("a mark of a different region, or the recoverer re-sending a mark it already had, does not", () => {
    const h = new Harness();
    h.up(A, SYNCED);
    h.up(B, SYNCED);
    h.up(C, SYNCED);
    h.mark(B, [2]);
    h.mark(C, [2]);
    h.log.apply({ kind: "node-failed", node: C });
    h.suspendResume(A); // re-armed (hint guard)
    expect(h.resyncWork(B)).toEqual([1, 2]); // B's own mark does not stop the hand-out
    h.mark(B, [2]); // duplicate (P1): the same write the hand-out already knew of
    h.mark(A, [3]);
    h.setRegionSync(B, 2, true);
    expect(h.inSync(A, 2)).toBe(1);
  });
});
