import { describe, expect, it } from "vitest";
import { encodeU64List } from "./codec.ts";
import { DM_ULOG_FLUSH, DM_ULOG_MARK_REGION } from "./request-types.ts";
import { A, B, Harness } from "./test-support.ts";

const CORE = "4096 clustered-core 1024"; // 4 regions
const CORE16 = "16384 clustered-core 1024"; // 16 regions
const DISK = "2097152 clustered-disk 7:0 1024"; // 2048 regions

/** Two resumed nodes with regions 0..15 in sync and clean. */
function twoNodesInSync(): Harness {
  const h = new Harness();
  h.up(A, CORE16);
  h.up(B, CORE16);
  for (let r = 0; r < 16; r++) h.setRegionSync(A, r, true);
  h.clear(A, [...Array(16).keys()]);
  return h;
}

describe("MARK / CLEAR reference counting (spec §2.10, §2.11, §3.6)", () => {
  it("scenario 8 / P10: a region stays dirty until every node that marked it cleared it", () => {
    const h = twoNodesInSync();
    expect(h.isClean(A, 7)).toBe(1);
    h.mark(A, [7]);
    h.mark(B, [7]);
    expect(h.isClean(A, 7)).toBe(0);
    h.clear(A, [7]);
    expect(h.isClean(B, 7)).toBe(0);
    h.clear(B, [7]);
    expect(h.isClean(A, 7)).toBe(1);
  });

  it("scenario 9 / P1 / P11: double mark, double clear, clear without mark", () => {
    const h = twoNodesInSync();
    h.mark(A, [7]);
    h.mark(A, [7]);
    h.clear(A, [7]);
    expect(h.isClean(A, 7)).toBe(1);
    expect(h.clear(A, [7]).error).toBe(0);
    expect(h.isClean(A, 7)).toBe(1);
    h.setRegionSync(A, 8, false);
    h.mark(A, [8]);
    h.clear(A, [8]);
    expect(h.isClean(A, 8)).toBe(0);
    h.setRegionSync(A, 8, true);
    h.clear(B, [8]); // B never marked 8
    expect(h.isClean(A, 8)).toBe(1);
  });

  it("scenario 10 / P9: an out-of-sync region becomes clean only after SET_REGION_SYNC then CLEAR", () => {
    const h = new Harness();
    h.up(A, CORE16);
    h.mark(A, [5]);
    h.clear(A, [5]);
    expect(h.isClean(A, 5)).toBe(0);
    h.setRegionSync(A, 5, true);
    h.clear(A, [5]);
    expect(h.isClean(A, 5)).toBe(1);
  });

  it("scenario 11 / P8: clear then mark in one flush leaves the region dirty, on disk too", () => {
    const h = new Harness();
    h.up(A, DISK);
    h.setRegionSync(A, 3, true);
    h.clear(A, [3]);
    h.flush(A);
    expect(h.diskBit(3)).toBe(1);
    h.clear(A, [3]);
    h.mark(A, [3]);
    expect(h.flush(A).error).toBe(0);
    expect(h.isClean(A, 3)).toBe(0);
    expect(h.diskBit(3)).toBe(0);
  });

  it("scenario 12: CLEAR_REGION is answered by a bare ACK with error 0", () => {
    const h = twoNodesInSync();
    const ack = h.clear(A, [1]);
    expect([ack.form, ack.error, ack.payload.length]).toEqual(["ack", 0, 0]);
    // Even a malformed CLEAR was already ACKed by cmirrord: the failure is invisible.
    const bad = h.clear(A, [99]);
    expect([bad.form, bad.error]).toEqual(["ack", 0]);
  });

  it("P21: out-of-range regions are rejected with -EINVAL and nothing is applied", () => {
    const h = twoNodesInSync();
    expect(h.mark(A, [3, 16]).error).toBe(-22);
    expect(h.isClean(A, 3)).toBe(1);
    expect(h.isClean(A, 16)).toBe(-22);
    expect(h.inSync(A, 16)).toBe(-22);
    expect(h.inSync(A, 15)).toBe(1);
    expect(h.flush(A, [2 ** 60]).error).toBe(-22);
    expect(h.send(A, DM_ULOG_MARK_REGION, new Uint8Array(12)).error).toBe(-22);
  });

  it("P12: boolean answers are exactly 0 or 1, even for high bits of a word", () => {
    const h = twoNodesInSync();
    for (const r of [0, 7, 15]) {
      expect(h.isClean(A, r)).toBe(1);
      expect(h.inSync(A, r)).toBe(1);
    }
  });
});

describe("FLUSH (spec §2.9)", () => {
  it("scenario 14 / P7: integrated flush marks its payload, then commits to disk", () => {
    const h = new Harness();
    h.up(A, DISK);
    for (const r of [10, 11]) h.setRegionSync(A, r, true);
    h.clear(A, [10, 11]);
    h.flush(A);
    expect(h.diskBit(10)).toBe(1);
    const reply = h.flush(A, [10, 11]);
    expect([reply.error, reply.payload.length]).toEqual([0, 0]);
    expect(h.isClean(A, 10)).toBe(0);
    expect(h.isClean(A, 11)).toBe(0);
    expect([h.diskBit(10), h.diskBit(11)]).toEqual([0, 0]);
    expect(h.send(A, DM_ULOG_FLUSH, new Uint8Array(12)).error).toBe(-22);
  });

  it("scenario 16: a FLUSH with nothing changed performs no write", () => {
    const h = new Harness();
    h.up(A, DISK);
    const writes = h.device().writeCount;
    expect(h.flush(A).error).toBe(0);
    h.mark(A, [4]); // region 4 is out of sync, so its clean bit is already 0
    expect(h.flush(A).error).toBe(0);
    expect(h.device().writeCount).toBe(writes);
    h.setRegionSync(A, 4, true);
    h.clear(A, [4]);
    h.flush(A);
    expect(h.device().writeCount).toBe(writes + 1);
    expect(h.device().flushCount).toBe(h.device().writeCount); // P33: fdatasync every write
  });

  it("scenario 17: a failing log device makes FLUSH -EIO and STATUS_INFO report D", () => {
    const h = new Harness();
    h.up(A, DISK);
    h.setRegionSync(A, 1, true);
    h.clear(A, [1]);
    h.flush(A);
    h.device().failWrites = true;
    h.mark(A, [1]);
    expect(h.flush(A).error).toBe(-5);
    const info = h.send(A, 15);
    expect(info.payload.length).toBe(22);
    expect(h.statusInfo(A)).toBe("3 clustered-disk 7:0 D");
    // touched was reset: nothing changed since, so the next FLUSH does not retry (§2.9).
    expect(h.flush(A).error).toBe(0);
  });

  it("a FLUSH with nothing new waits for the write in flight that carries its marks", () => {
    const h = new Harness();
    h.up(A, DISK);
    h.up(B, DISK);
    h.setRegionSync(A, 9, true);
    h.clear(A, [9]);
    h.flush(A);
    // Apply without performing I/O, to see replies that wait for it.
    const log = h.log;
    const req = (node: number, seq: number, type: number, data: Uint8Array = new Uint8Array(0)) =>
      log.apply({
        kind: "request",
        node,
        request: {
          luid: 0x1111n,
          uuid: "LVM-test",
          version: 3,
          error: 0,
          seq,
          requestType: type,
          data,
        },
      });
    req(A, 900, DM_ULOG_MARK_REGION, encodeU64List([9]));
    const f1 = req(A, 901, DM_ULOG_FLUSH);
    expect(f1.replies).toHaveLength(0);
    expect(f1.io).toHaveLength(1);
    req(B, 902, DM_ULOG_MARK_REGION, encodeU64List([9]));
    const f2 = req(B, 903, DM_ULOG_FLUSH);
    expect(f2.replies).toHaveLength(0); // B's write would otherwise race the dirty bit
    expect(f2.io).toHaveLength(0);
    const done = log.apply({ kind: "io-done", ioId: f1.io[0]!.ioId, error: 0 });
    expect(done.replies.map((r) => [r.node, r.header.seq, r.error])).toEqual([
      [A, 901, 0],
      [B, 903, 0],
    ]);
  });

  it("core logs flush without I/O", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.mark(A, [0]);
    const writes = h.device().writeCount;
    expect(h.flush(A).error).toBe(0);
    expect(h.device().writeCount).toBe(writes);
  });
});
