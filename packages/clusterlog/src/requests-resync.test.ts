import { describe, expect, it } from "vitest";
import { encodeU64 } from "./codec.ts";
import { DM_ULOG_GET_RESYNC_WORK, DM_ULOG_SET_REGION_SYNC } from "./request-types.ts";
import { A, B, Harness } from "./test-support.ts";

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
