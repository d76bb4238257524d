import { describe, expect, it } from "vitest";
import { ClusterLog } from "./cluster-log.ts";
import { decodeAscii, encodeAscii } from "./codec.ts";
import { DM_ULOG_CTR, DM_ULOG_DTR, DM_ULOG_IN_SYNC, DM_ULOG_PRESUSPEND } from "./request-types.ts";
import { A, B, Harness, L1, L2, U } from "./test-support.ts";

const CORE = "4096 clustered-core 1024";
const DISK = "2097152 clustered-disk 7:0 1024";

describe("CTR (spec §2.1)", () => {
  it("scenario 2: core CTR without NUL, GET_REGION_SIZE, GET_SYNC_COUNT before resume", () => {
    const h = new Harness();
    const ctr = h.ctr(A, CORE);
    expect([ctr.error, ctr.payload.length]).toEqual([0, 0]);
    const size = h.send(A, 6);
    expect([size.error, size.payload.length, h.value(size)]).toEqual([0, 8, 1024]);
    expect(h.syncCount(A)).toBe(0);
  });

  it("scenario 3: clustered-disk CTR returns the device (version ≥ 2) and not for v1", () => {
    const h = new Harness();
    const v3 = h.ctr(A, DISK);
    expect(v3.error).toBe(0);
    expect(decodeAscii(v3.payload)).toBe("7:0\0");
    const v1 = h.ctr(A, DISK, { luid: L2, version: 1 });
    expect([v1.error, v1.payload.length]).toEqual([0, 0]);
    expect(h.log.state.instances.size).toBe(2);
    expect([...h.log.state.instances.values()][0]?.config.regionCount).toBe(2048);
  });

  it("scenario 4: error replies carry no payload; [REC] P4 identical re-CTR is accepted", () => {
    const h = new Harness();
    const empty = h.send(A, DM_ULOG_CTR, new Uint8Array(0));
    expect([empty.error, empty.payload.length]).toEqual([-22, 0]);
    expect(h.ctr(A, "4096 foo-log 1024").error).toBe(-22);
    expect(h.ctr(A, "2097152 clustered-disk 7:0 1024 a b c d").error).toBe(-22);
    expect(h.ctr(A, CORE).error).toBe(0);
    expect(h.ctr(A, CORE).error).toBe(0); // [REC] P4(a)
    expect(h.ctr(A, "4096 clustered-core 2048").error).toBe(-22); // different args: P5
    expect(h.ctr(A, CORE, { luid: L2 }).error).toBe(0); // table swap
  });

  it("scenario 4 / P5: with cmirrordQuirks a duplicate CTR is -EINVAL and core size 0 is -ENOENT", () => {
    const h = new Harness({ cmirrordQuirks: true });
    expect(h.ctr(A, CORE).error).toBe(0);
    expect(h.ctr(A, CORE).error).toBe(-22);
    expect(h.ctr(A, "4096 clustered-core 0", { luid: L2 }).error).toBe(-2);
  });

  it("P4(b): the re-CTR form (counted NUL) gets no device name, avoiding -ENOSPC", () => {
    const h = new Harness();
    const first = h.ctr(A, DISK);
    expect(first.payload.length).toBe(4);
    const again = h.ctr(A, DISK, { nul: true });
    expect([again.error, again.payload.length]).toEqual([0, 0]);
  });

  it("scenario 25: after a server restart the re-CTR and RESUME succeed, then requests work", () => {
    const h = new Harness(); // the restarted server: empty state
    const ctr = h.send(A, DM_ULOG_CTR, encodeAscii(DISK, true));
    expect([ctr.error, ctr.payload.length]).toEqual([0, 0]);
    expect(h.resume(A).error).toBe(0);
    expect(h.mark(A, [1]).error).toBe(0);
    expect(h.flush(A).error).toBe(0);
  });
});

describe("DTR, PRESUSPEND, POSTSUSPEND, RESUME (spec §2.2–§2.5)", () => {
  it("scenario 5: unknown log → -ENOENT on the clustered path, -EINVAL locally", () => {
    const h = new Harness();
    h.up(A, CORE);
    const other = { uuid: "LVM-other" };
    expect(h.send(A, 7, new Uint8Array(8), other).error).toBe(-2);
    expect(h.send(A, DM_ULOG_IN_SYNC, new Uint8Array(8), other).error).toBe(-22);
    expect(h.send(A, DM_ULOG_PRESUSPEND, undefined, other).error).toBe(-22);
    expect(h.send(A, DM_ULOG_DTR, undefined, other).error).toBe(-22);
  });

  it("clustered requests on a pending (never resumed) log → -ENOENT; local ones answer", () => {
    const h = new Harness();
    h.ctr(A, CORE);
    expect(h.mark(A, [1]).error).toBe(-2);
    expect(h.isClean(A, 1)).toBe(-2);
    expect(h.inSync(A, 1)).toBe(-22);
    expect(h.presuspend(A).error).toBe(-22);
    expect(h.postsuspend(A).error).toBe(-2);
    expect(h.statusTable(A)).toBe("clustered-core 1024  ");
    expect(h.statusInfo(A)).toBe(-2); // P35: routed through the cluster
  });

  it("RESUME of an unknown log is -EINVAL; an extra RESUME is a no-op", () => {
    const h = new Harness();
    expect(h.resume(A).error).toBe(-22);
    h.up(A, CORE);
    h.setRegionSync(A, 0, true);
    expect(h.resume(A).error).toBe(0);
    expect(h.syncCount(A)).toBe(1);
  });

  it("a second luid of the same node cannot join while the first is official (-EEXIST)", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.ctr(A, CORE, { luid: L2 });
    expect(h.resume(A, L2).error).toBe(-17);
  });

  it("scenario 19: presuspend halts hints (cmirrord quirk), suspend+resume restores them", () => {
    const h = new Harness({ cmirrordQuirks: true });
    h.up(A, CORE);
    expect(h.presuspend(A).error).toBe(0);
    expect(h.remoteRecovering(A, 2)).toEqual([0, 4]);
    expect(h.resume(A).error).toBe(0); // RESUME without POSTSUSPEND: still halted
    expect(h.remoteRecovering(A, 2)).toEqual([0, 4]);
    expect(h.postsuspend(A).error).toBe(0);
    expect(h.resume(A).error).toBe(0);
    expect(h.remoteRecovering(A, 2)[0]).toBe(1);
  });

  it("scenario 19 / [REC] P29: without quirks a presuspended server answers from real state", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.presuspend(A);
    const [recovering, hint] = h.remoteRecovering(A, 2);
    expect(recovering).toBe(1);
    expect(hint).toBeLessThanOrEqual(2); // never rc: the kernel keeps asking for work
  });

  it("scenario 20: table swap on a disk log keeps the last flushed clean bits", () => {
    const h = new Harness();
    h.up(A, DISK, L1);
    // Recover regions 0..9 and clean them; mark 5 again and flush (5 dirty on disk).
    for (let r = 0; r < 10; r++) h.setRegionSync(A, r, true);
    h.clear(A, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    h.mark(A, [5]);
    h.flush(A);
    expect(h.ctr(A, DISK, { luid: L2 }).error).toBe(0);
    expect(h.presuspend(A, L1).error).toBe(0);
    expect(h.postsuspend(A, L1).error).toBe(0);
    expect(h.resume(A, L2).error).toBe(0);
    expect(h.syncCount(A, L2)).toBe(9);
    expect(h.inSync(A, 5, L2)).toBe(0);
    expect(h.inSync(A, 6, L2)).toBe(1);
    expect(h.dtr(A, L1).error).toBe(0);
    expect(h.dtr(A, L1).error).toBe(-22);
  });

  it("scenario 20 (core): a single-node core log loses its state across the swap", () => {
    const h = new Harness();
    h.up(A, CORE, L1);
    h.setRegionSync(A, 0, true);
    h.ctr(A, CORE, { luid: L2 });
    h.postsuspend(A, L1);
    h.resume(A, L2);
    expect(h.syncCount(A, L2)).toBe(0);
  });

  it("POSTSUSPEND returns the log to pending with its sync count retained", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.setRegionSync(A, 1, true);
    h.postsuspend(A);
    expect(h.syncCount(A)).toBe(1);
    expect(h.inSync(A, 1)).toBe(-22);
    expect(h.log.state.groups.size).toBe(0);
  });

  it("DTR before suspend leaves the group; the other member stays server", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.up(B, CORE);
    h.mark(A, [3]);
    expect(h.dtr(A).error).toBe(0);
    const group = h.log.state.groups.get("LVM-test")!;
    expect(group.members.map((m) => m.node)).toEqual([B]);
    expect(group.markers.has(3)).toBe(false);
  });
});

describe("master resume and the disk (spec §2.5, §5)", () => {
  function writeHeader(h: Harness, nrRegions: number, fill: number) {
    const data = h.device().data;
    const view = new DataView(data.buffer);
    view.setUint32(0, 0x4d69_5272, true);
    view.setUint32(4, 2, true);
    view.setBigUint64(8, BigInt(nrRegions), true);
    data.fill(fill, 1024, 1024 + 256);
  }

  it("scenario 15: a fresh zeroed device gets a header and an all-dirty bitmap", () => {
    const h = new Harness();
    h.up(A, DISK);
    expect([...h.device().data.subarray(0, 16)]).toEqual([
      0x72, 0x52, 0x69, 0x4d, 0x02, 0, 0, 0, 0x00, 0x08, 0, 0, 0, 0, 0, 0,
    ]);
    expect(
      h
        .device()
        .data.subarray(1024, 1280)
        .every((b) => b === 0),
    ).toBe(true);
    expect(h.syncCount(A)).toBe(0);
  });

  it("scenario 15: valid disk bits are kept; a clear bit 17 is resynced first", () => {
    const h = new Harness();
    writeHeader(h, 2048, 0xff);
    h.device().data[1024 + 2] = 0xfd;
    h.up(A, DISK);
    expect(h.syncCount(A)).toBe(2047);
    expect(h.inSync(A, 17)).toBe(0);
    expect(h.resyncWork(A)).toEqual([1, 17]);
  });

  it("scenario 15: a grown device resyncs the new part, or not with nosync", () => {
    const grown = new Harness();
    writeHeader(grown, 1024, 0xff);
    grown.up(A, DISK);
    expect(grown.syncCount(A)).toBe(1024);
    expect(new DataView(grown.device().data.buffer).getUint32(8, true)).toBe(2048);
    const nosync = new Harness();
    writeHeader(nosync, 1024, 0xff);
    nosync.up(A, `${DISK} nosync`);
    expect(nosync.syncCount(A)).toBe(2048);
  });

  it("a RESUME whose master went away while loading gets -EAGAIN, so the kernel resends", () => {
    const h = new Harness();
    h.ctr(A, DISK);
    h.ctr(B, DISK);
    const log = h.log;
    const op = (node: number, type: number, s: number) => ({
      kind: "request" as const,
      node,
      request: {
        luid: L1,
        uuid: "LVM-test",
        version: 3,
        error: 0,
        seq: s,
        requestType: type,
        data: new Uint8Array(0),
      },
    });
    const read = log.apply(op(A, 5, 700)).io[0]!;
    expect(log.apply(op(B, 5, 701)).replies).toEqual([]);
    const dtr = log.apply(op(A, DM_ULOG_DTR, 702));
    expect(dtr.replies.map((r) => [r.node, r.header.seq, r.error])).toEqual([
      [B, 701, -11],
      [A, 702, 0],
    ]);
    const done = log.apply({ kind: "io-done", ioId: read.ioId, error: 0 });
    expect(done.replies.map((r) => [r.node, r.header.seq, r.error])).toEqual([[A, 700, -11]]);
    expect(h.resume(B).error).toBe(0); // the resend: B is now the first member
  });
});

describe("[REC] a core log keeps its bits across a suspend of its last member", () => {
  // 4096 sectors of 1024: 4 regions. The kernel's own core log keeps its bits across a
  // suspend; cmirrord resyncs everything. Seen on the real kernel (kernel lab): every
  // `dmsetup suspend`/`resume` — and the agent's own re-arming — resynced the whole mirror.
  const syncAll = (h: Harness) => {
    for (let r = 0; r < 4; r++) {
      const [got, region] = h.resyncWork(A);
      if (!got) continue;
      h.setRegionSync(A, region, true);
      h.clear(A, [region]); // the kernel clears a recovered region (dm-region-hash)
    }
  };

  it("suspend and resume of the only member: in sync stays in sync", () => {
    const h = new Harness();
    h.up(A, CORE);
    syncAll(h);
    expect(h.syncCount(A)).toBe(4);
    // A mark still held at POSTSUSPEND is stale (the kernel quiesced its writes first):
    // a clean departure releases it, as before.
    h.mark(A, [2]);
    h.flush(A);
    h.suspendResume(A);
    expect(h.syncCount(A)).toBe(4);
    expect(h.inSync(A, 2)).toBe(1);
  });

  it("a nosync log taken out of sync (a failed write) stays out of sync across the suspend", () => {
    const h = new Harness();
    h.up(A, "4096 clustered-core 1024 nosync");
    expect(h.syncCount(A)).toBe(4);
    h.mark(A, [1]);
    h.setRegionSync(A, 1, false); // dm-raid1: a leg failed the write
    h.suspendResume(A);
    expect(h.inSync(A, 1)).toBe(0);
    expect(h.syncCount(A)).toBe(3);
  });

  it("an operator resync running when the only member suspends goes on after its resume", () => {
    const h = new Harness();
    h.up(A, "4096 clustered-core 1024 nosync");
    h.log.apply({
      kind: "resync",
      resync: { action: "start", uuid: U, id: "r1", first: 1, last: 2 },
    });
    h.suspendResume(A);
    const group = h.log.state.groups.get(U)!;
    expect(group.resync?.id).toBe("r1");
    expect(h.syncCount(A)).toBe(2);
  });

  it("without the retention (cmirrord) the same suspend and resume resyncs everything", () => {
    const h = new Harness({ cmirrordQuirks: true });
    h.up(A, CORE);
    syncAll(h);
    h.suspendResume(A);
    expect(h.syncCount(A)).toBe(0);
  });

  it("an out-of-sync region stays out of sync across the suspend (clean implies in sync)", () => {
    const h = new Harness();
    h.up(A, CORE);
    syncAll(h);
    h.setRegionSync(A, 3, false);
    h.suspendResume(A);
    expect(h.inSync(A, 3)).toBe(0);
    expect(h.syncCount(A)).toBe(3);
  });

  it("the retained bits survive a snapshot; a new table (another luid or node) starts over", () => {
    const h = new Harness();
    h.up(A, CORE);
    syncAll(h);
    h.ctr(A, CORE, { luid: L2 }); // a table swap: the new table is loaded first
    h.presuspend(A);
    h.postsuspend(A);
    const restored = ClusterLog.fromSnapshot(h.log.snapshot());
    expect(restored.ok && restored.value.state.retained.get(U)?.cleanBits.count).toBe(4);
    h.resume(A, L2); // new legs may be in it: everything resyncs, as with the kernel's core log
    expect(h.syncCount(A, L2)).toBe(0);
    expect(h.log.state.retained.size).toBe(0);
  });

  it("every member suspends, another node resumes first: a nosync table keeps the cluster's out-of-sync regions and its resync", () => {
    // Two members of a nosync core log; an operator resync makes regions 1–2 out of sync;
    // both kernels are suspended together (each agent re-arming its own), B last, and A's
    // resume comes first. Its table's `nosync` must not call regions 1–2 in sync without a
    // copy (it did: the group started over from the table's arguments).
    const NOSYNC = "4096 clustered-core 1024 nosync";
    const h = new Harness();
    h.up(A, NOSYNC);
    h.up(B, NOSYNC);
    h.log.apply({
      kind: "resync",
      resync: { action: "start", uuid: U, id: "r1", first: 1, last: 2 },
    });
    expect(h.syncCount(A)).toBe(2);
    h.presuspend(A);
    h.postsuspend(A);
    h.presuspend(B);
    h.postsuspend(B);
    expect(h.log.state.groups.has(U)).toBe(false);
    h.resume(A);
    expect(h.syncCount(A)).toBe(2);
    expect([h.inSync(A, 1), h.inSync(A, 2)]).toEqual([0, 0]);
    expect(h.log.state.groups.get(U)?.resync?.id).toBe("r1");
    h.resume(B);
    expect(h.syncCount(B)).toBe(2);
  });

  it("a new nosync table after the last member's suspend still resyncs what the cluster had out of sync", () => {
    const h = new Harness();
    h.up(A, "4096 clustered-core 1024 nosync");
    h.setRegionSync(A, 3, false); // a leg failed a write
    h.ctr(A, "4096 clustered-core 1024 nosync", { luid: L2 }); // the replacement table
    h.presuspend(A);
    h.postsuspend(A);
    h.resume(A, L2);
    // The new table says its legs are in sync, except where the cluster knew they are not.
    expect(h.syncCount(A, L2)).toBe(3);
    expect(h.inSync(A, 3, L2)).toBe(0);
  });

  it("nothing is retained after a DTR or after a failure", () => {
    const dtr = new Harness();
    dtr.up(A, CORE);
    syncAll(dtr);
    dtr.presuspend(A);
    dtr.postsuspend(A);
    dtr.dtr(A);
    expect(dtr.log.state.retained.size).toBe(0);

    const failed = new Harness();
    failed.up(A, CORE);
    failed.up(B, CORE);
    syncAll(failed);
    failed.presuspend(A);
    failed.postsuspend(A);
    failed.log.apply({ kind: "node-failed", node: B });
    expect(failed.log.state.retained.size).toBe(0);
  });
});
