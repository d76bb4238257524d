import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  eventually,
  L1,
  L2,
  TestCluster,
  type TestClusterOptions,
  U,
} from "../../testing/server-harness.ts";
import {
  buildRequest,
  HEADER_SIZE,
  readU64,
  text,
  u64,
  withLength,
} from "../../testing/uapi-client.ts";

// CLUSTERLOG-SPEC.md §9, scenarios 1–25, through the real Unix socket. Node ids A = 1,
// B = 2, C = 3; each node is a server with its own socket on one in-process order.
// Scenario 17 (a failing log device) runs on a real loop device in disk-log.test.ts.

const A = 1;
const B = 2;
const C = 3;
const MiB = 1 << 20;

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

async function start(
  nodes: number[] = [A],
  options: TestClusterOptions = {},
  overrides?: Record<string, string>,
) {
  cluster = await TestCluster.create(options);
  for (const id of nodes) await cluster.startNode(id, overrides ? { overrides } : {});
  return cluster;
}

async function logFile(name = "log-7-0", contents?: Uint8Array): Promise<string> {
  const path = join(cluster!.dir, name);
  await writeFile(path, contents ?? new Uint8Array(MiB));
  return path;
}

/** Start with a disk log file `7:0` (fresh cluster, node A unless told). */
async function startDisk(
  nodes: number[] = [A],
  contents?: Uint8Array,
  options: TestClusterOptions = {},
) {
  cluster = await TestCluster.create(options);
  const path = await logFile("log-7-0", contents);
  for (const id of nodes) await cluster.startNode(id, { overrides: { "7:0": path } });
  return { cluster, path };
}

async function diskBit(path: string, region: number): Promise<number> {
  const bytes = await readFile(path);
  return (bytes[1024 + (region >> 3)]! >> (region & 7)) & 1;
}

describe("§9 conformance through the socket", () => {
  it("1. header codec: request and reply bytes", async () => {
    const c = await start();
    const k = await c.kernel(A);
    const luid = 0xffff888012345678n;
    await k.up("40960 clustered-core 1024", luid);
    const request = buildRequest({ type: 10, seq: 42, uuid: U, luid, data: u64(5, 9) });
    const frame = withLength(request);
    // The stream's length prefix is what cn_msg.len would be: 160 + 16.
    expect([...frame.subarray(0, 4)]).toEqual([176, 0, 0, 0]);
    expect([...request.subarray(140, 144)]).toEqual([0x03, 0, 0, 0]);
    expect([...request.subarray(148, 152)]).toEqual([0x2a, 0, 0, 0]);
    expect([...request.subarray(152, 156)]).toEqual([0x0a, 0, 0, 0]);
    expect([...request.subarray(156, 160)]).toEqual([0x10, 0, 0, 0]);
    k.client.write(frame);
    const reply = await k.client.reply(42);
    // A 160-byte reply (cn_msg.len 160): the request header with error 0 and data_size 0.
    expect(reply.bytes.length).toBe(HEADER_SIZE);
    expect([...reply.bytes.subarray(0, 144)]).toEqual([...request.subarray(0, 144)]);
    expect([...reply.bytes.subarray(144, 148)]).toEqual([0, 0, 0, 0]);
    expect([...reply.bytes.subarray(148, 152)]).toEqual([0x2a, 0, 0, 0]);
    expect([...reply.bytes.subarray(152, 156)]).toEqual([0x0a, 0, 0, 0]);
    expect([...reply.bytes.subarray(156, 160)]).toEqual([0, 0, 0, 0]);
    expect(reply.luid).toBe(luid);
    expect(await k.isClean(5)).toBe(0);
    expect(await k.isClean(9)).toBe(0);
  });

  it("2. CTR clustered-core and GET_REGION_SIZE", async () => {
    const c = await start();
    const k = await c.kernel(A);
    const ctr = await k.ctr("4096 clustered-core 1024");
    expect(ctr.seq).toBe(1);
    expect([ctr.error, ctr.dataSize]).toEqual([0, 0]);
    const size = await k.send(6);
    expect([size.seq, size.error, size.dataSize]).toEqual([2, 0, 8]);
    expect([...size.data]).toEqual([0x00, 0x04, 0, 0, 0, 0, 0, 0]);
    expect(await k.syncCount()).toBe(0);
  });

  it("3. CTR clustered-disk returns the device for version ≥ 2 only", async () => {
    const { cluster: c } = await startDisk();
    const k = await c.kernel(A);
    const v3 = await k.ctr("2097152 clustered-disk 7:0 1024", { version: 3 });
    expect([v3.error, v3.dataSize]).toEqual([0, 4]);
    expect([...v3.data]).toEqual([0x37, 0x3a, 0x30, 0x00]);
    const v1 = await k.ctr("2097152 clustered-disk 7:0 1024", { version: 1, luid: L2 });
    expect([v1.error, v1.dataSize]).toEqual([0, 0]);
    // region_count = 2048: regions 0..2047 exist, 2048 does not.
    expect((await k.resume()).error).toBe(0);
    expect(await k.inSync(2047)).toBe(0);
    expect(await k.inSync(2048)).toBe(-22);
  });

  it("4. CTR errors ([REC] answers; cmirrord's in quirk mode)", async () => {
    const c = await start();
    const k = await c.kernel(A);
    const empty = await k.send(1);
    expect([empty.error, empty.dataSize]).toEqual([-22, 0]);
    expect((await k.ctr("4096 foo-log 1024")).error).toBe(-22);
    expect((await k.ctr("12x clustered-core 1024")).error).toBe(-22);
    expect((await k.ctr("2097152 clustered-disk 7:0 0")).error).toBe(-22);
    const fiveArgs = await k.ctr("2097152 clustered-disk 7:0 1024 nosync block_on_error extra");
    expect([fiveArgs.error, fiveArgs.dataSize]).toEqual([-22, 0]);
    expect((await k.ctr("4096 clustered-core 0")).error).toBe(-22); // [REC]; cmirrord -2
    expect((await k.ctr("4096 clustered-core 1024")).error).toBe(0);
    expect((await k.ctr("4096 clustered-core 1024")).error).toBe(0); // [REC] P4
    expect((await k.ctr("4096 clustered-core 1024", { luid: L2 })).error).toBe(0); // table swap

    await c.close();
    const q = await start([A], { clusterLog: { cmirrordQuirks: true } });
    const kq = await q.kernel(A);
    expect((await kq.ctr("4096 clustered-core 0")).error).toBe(-2);
    expect((await kq.ctr("4096 clustered-core 1024")).error).toBe(0);
    const dup = await kq.ctr("4096 clustered-core 1024");
    expect([dup.error, dup.dataSize]).toEqual([-22, 0]);
  });

  it("5. unknown log", async () => {
    const c = await start();
    const k = await c.kernel(A);
    k.uuid = "LVM-U2";
    expect(await k.isClean(0)).toBe(-2);
    expect(await k.inSync(0)).toBe(-22);
    expect((await k.presuspend()).error).toBe(-22);
    expect((await k.dtr()).error).toBe(-22);
  });

  it("6. nosync core", async () => {
    const c = await start();
    const k = await c.kernel(A);
    expect((await k.ctr("4096 clustered-core 1024 nosync")).error).toBe(0);
    expect((await k.resume()).error).toBe(0);
    expect(await k.syncCount()).toBe(4);
    expect(await k.inSync(3)).toBe(1);
    const work = await k.resyncWork();
    expect((work as number[])[0]).toBe(0);
    expect(await k.remoteRecovering(0)).toEqual([0, 4]);
  });

  it("7. sequential and priority resync", async () => {
    const c = await start([A, B]);
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("4096 clustered-core 1024");
    await b.up("4096 clustered-core 1024");
    expect(await a.syncCount()).toBe(0);
    expect(await a.inSync(0)).toBe(0);
    expect(await a.remoteRecovering(2)).toEqual([1, 0]);
    expect(await a.resyncWork()).toEqual([1, 2]);
    expect(((await b.resyncWork()) as number[])[0]).toBe(0);
    expect(await a.resyncWork()).toEqual([1, 2]);
    expect((await a.setRegionSync(2, true)).error).toBe(0);
    expect(await a.syncCount()).toBe(1);
    expect(await b.resyncWork()).toEqual([1, 0]);
    await b.setRegionSync(0, true);
    expect(await a.resyncWork()).toEqual([1, 1]);
    await a.setRegionSync(1, true);
    expect(await a.resyncWork()).toEqual([1, 3]);
    await a.setRegionSync(3, true);
    expect(((await a.resyncWork()) as number[])[0]).toBe(0);
    expect(await a.syncCount()).toBe(4);
    expect(await a.remoteRecovering(3)).toEqual([0, 3]);
  });

  it("8. mark/clear reference counting across nodes", async () => {
    const c = await start([A, B]);
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("40960 clustered-core 1024 nosync");
    await b.up("40960 clustered-core 1024 nosync");
    await a.mark([7]);
    await b.mark([7]);
    expect(await a.isClean(7)).toBe(0);
    await a.clear([7]);
    expect(await a.isClean(7)).toBe(0);
    await b.clear([7]);
    expect(await a.isClean(7)).toBe(1);
  });

  it("9. idempotent mark, double clear, clear without mark", async () => {
    const c = await start([A, B]);
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("40960 clustered-core 1024");
    await b.up("40960 clustered-core 1024");
    await a.setRegionSync(7, true);
    await a.mark([7]);
    await a.mark([7]);
    await a.clear([7]);
    expect(await a.isClean(7)).toBe(1);
    expect((await a.clear([7])).error).toBe(0);
    expect(await a.isClean(7)).toBe(1);
    expect(await a.isClean(8)).toBe(0);
    await a.setRegionSync(8, true);
    await b.clear([8]);
    expect(await a.isClean(8)).toBe(1);
  });

  it("10. a clear does not clean an out-of-sync region", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("40960 clustered-core 1024");
    await a.mark([5]);
    await a.clear([5]);
    expect(await a.isClean(5)).toBe(0);
    await a.setRegionSync(5, true);
    await a.clear([5]);
    expect(await a.isClean(5)).toBe(1);
  });

  it("11. clear and mark of one region in one flush leave it dirty, on disk too", async () => {
    const { cluster: c, path } = await startDisk();
    const a = await c.kernel(A);
    await a.up("2097152 clustered-disk 7:0 1024 nosync");
    expect(await diskBit(path, 3)).toBe(1);
    await a.clear([3]);
    await a.mark([3]);
    expect((await a.flush()).error).toBe(0);
    expect(await a.isClean(3)).toBe(0);
    expect(await diskBit(path, 3)).toBe(0);
  });

  it("12. CLEAR_REGION gets a full reply with error 0 and data_size 0", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("4096 clustered-core 1024");
    const clear = await a.clear([1]);
    expect([clear.error, clear.dataSize, clear.bytes.length, clear.seq]).toEqual([0, 0, 160, 3]);
    // Acknowledged like cmirrord even when the CLEAR itself is invalid (out of range).
    const invalid = await a.clear([4]);
    expect([invalid.error, invalid.dataSize]).toEqual([0, 0]);
  });

  it("13. reply-size rule", async () => {
    const { cluster: c } = await startDisk();
    const a = await c.kernel(A);
    const sizes: [string, number][] = [];
    const note = async (name: string, reply: Promise<{ error: number; dataSize: number }>) => {
      const r = await reply;
      expect(r.error).toBe(0);
      sizes.push([name, r.dataSize]);
    };
    await note("CTR", a.ctr("2097152 clustered-disk 7:0 1024"));
    await note("RESUME", a.resume());
    await note("MARK", a.mark([1]));
    await note("CLEAR", a.clear([1]));
    await note("FLUSH", a.flush());
    await note("SET_REGION_SYNC", a.setRegionSync(1, true));
    await note("IS_CLEAN", a.send(7, u64(1)));
    await note("IN_SYNC", a.send(8, u64(1)));
    await note("GET_REGION_SIZE", a.send(6));
    await note("GET_SYNC_COUNT", a.send(14));
    await note("GET_RESYNC_WORK", a.send(12));
    await note("IS_REMOTE_RECOVERING", a.send(17, u64(1)));
    await note("PRESUSPEND", a.presuspend());
    await note("POSTSUSPEND", a.postsuspend());
    await note("DTR", a.dtr());
    expect(Object.fromEntries(sizes)).toEqual({
      CTR: 4,
      RESUME: 0,
      MARK: 0,
      CLEAR: 0,
      FLUSH: 0,
      SET_REGION_SYNC: 0,
      IS_CLEAN: 8,
      IN_SYNC: 8,
      GET_REGION_SIZE: 8,
      GET_SYNC_COUNT: 8,
      GET_RESYNC_WORK: 16,
      IS_REMOTE_RECOVERING: 16,
      PRESUSPEND: 0,
      POSTSUSPEND: 0,
      DTR: 0,
    });
  });

  it("14. integrated flush marks, then commits to disk", async () => {
    const { cluster: c, path } = await startDisk();
    const a = await c.kernel(A);
    await a.up("2097152 clustered-disk 7:0 1024 nosync");
    const flush = await a.flush([10, 11]);
    expect([flush.error, flush.dataSize]).toEqual([0, 0]);
    expect(await diskBit(path, 10)).toBe(0);
    expect(await diskBit(path, 11)).toBe(0);
    expect(await diskBit(path, 12)).toBe(1);
    expect(await a.isClean(10)).toBe(0);
    expect(await a.isClean(11)).toBe(0);
    expect((await a.send(9, new Uint8Array(12))).error).toBe(-22);
  });

  it("15. disk format on master resume: fresh, pre-written, grown", async () => {
    cluster = await TestCluster.create();
    const fresh = await logFile("fresh");
    const image = new Uint8Array(MiB);
    const view = new DataView(image.buffer);
    view.setUint32(0, 0x4d695272, true);
    view.setUint32(4, 2, true);
    view.setBigUint64(8, 2048n, true);
    image.fill(0xff, 1024, 1024 + 256);
    image[1024 + 2] = 0xff & ~(1 << 1); // bit 17 clear
    const prewritten = await logFile("prewritten", image);
    const small = new Uint8Array(MiB);
    small.set(image.subarray(0, 16));
    new DataView(small.buffer).setBigUint64(8, 1024n, true);
    small.fill(0xff, 1024, 1024 + 128);
    const grown = await logFile("grown", small);
    const grownNosync = await logFile("grown-nosync", small);
    await cluster.startNode(A, {
      overrides: { "7:0": fresh, "7:1": prewritten, "7:2": grown, "7:3": grownNosync },
    });
    const a = await cluster.kernel(A);

    a.uuid = "LVM-fresh";
    await a.up("2097152 clustered-disk 7:0 1024");
    const bytes = await readFile(fresh);
    expect([...bytes.subarray(0, 16)]).toEqual([
      0x72, 0x52, 0x69, 0x4d, 0x02, 0, 0, 0, 0x00, 0x08, 0, 0, 0, 0, 0, 0,
    ]);
    expect(bytes.subarray(1024, 1280).every((b) => b === 0)).toBe(true);
    expect(await a.syncCount()).toBe(0);

    a.uuid = "LVM-prewritten";
    await a.up("2097152 clustered-disk 7:1 1024");
    expect(await a.syncCount()).toBe(2047);
    expect(await a.inSync(17)).toBe(0);
    expect(await a.resyncWork()).toEqual([1, 17]);

    a.uuid = "LVM-grown";
    await a.up("2097152 clustered-disk 7:2 1024");
    expect(await a.syncCount()).toBe(1024);

    a.uuid = "LVM-grown-nosync";
    await a.up("2097152 clustered-disk 7:3 1024 nosync");
    expect(await a.syncCount()).toBe(2048);
  });

  it("16. FLUSH writes only when something changed", async () => {
    const { cluster: c, path } = await startDisk();
    const node = c.node(A);
    const a = await c.kernel(A);
    await a.up("2097152 clustered-disk 7:0 1024 nosync");
    const writes = node.fileStats.writes;
    const mtime = (await stat(path)).mtimeMs;
    expect((await a.flush()).error).toBe(0);
    expect(node.fileStats.writes).toBe(writes);
    expect((await stat(path)).mtimeMs).toBe(mtime);
    await a.mark([4]);
    expect((await a.flush()).error).toBe(0);
    expect(node.fileStats.writes).toBe(writes + 1);
    await a.mark([4]); // already dirty: nothing to write
    expect((await a.flush()).error).toBe(0);
    expect(node.fileStats.writes).toBe(writes + 1);
  });

  it("18. status strings", async () => {
    const { cluster: c } = await startDisk();
    const a = await c.kernel(A);
    await a.up("4096 clustered-core 1024");
    expect(await a.statusInfo()).toBe("1 clustered-core");
    expect(await a.statusTable()).toBe("clustered-core 1024  ");
    a.uuid = "LVM-disk";
    await a.up("2097152 clustered-disk 7:0 1024 nosync block_on_error");
    expect(await a.statusTable()).toBe("clustered-disk 7:0 1024 nosync block_on_error ");
    const info = await a.statusInfoReply();
    expect(text(info.data)).toBe("3 clustered-disk 7:0 A");
    expect(info.dataSize).toBe(22);
  });

  it("19. presuspend halts hints (cmirrord quirk) or answers from real state ([REC] P29)", async () => {
    const q = await start([A], { clusterLog: { cmirrordQuirks: true } });
    const a = await q.kernel(A);
    await a.up("4096 clustered-core 1024");
    expect((await a.presuspend()).error).toBe(0);
    expect(await a.remoteRecovering(1)).toEqual([0, 4]);
    expect((await a.resume()).error).toBe(0); // RESUME without POSTSUSPEND: still halted
    expect(await a.remoteRecovering(1)).toEqual([0, 4]);
    expect((await a.postsuspend()).error).toBe(0);
    expect((await a.resume()).error).toBe(0);
    expect(((await a.remoteRecovering(1)) as number[])[0]).toBe(1);
    await q.close();

    const r = await start([A]);
    const k = await r.kernel(A);
    await k.up("4096 clustered-core 1024");
    await k.presuspend();
    expect(await k.remoteRecovering(1)).toEqual([1, 0]);
  });

  it("20. table swap on a disk log (single node)", async () => {
    const { cluster: c } = await startDisk();
    const a = await c.kernel(A);
    await a.up("2097152 clustered-disk 7:0 1024");
    for (const r of [0, 1, 2, 3]) await a.setRegionSync(r, true);
    await a.clear([0, 1, 2, 3]);
    await a.flush();
    await a.mark([2]);
    await a.flush();
    expect((await a.ctr("2097152 clustered-disk 7:0 1024", { luid: L2 })).error).toBe(0);
    expect((await a.presuspend(L1)).error).toBe(0);
    expect((await a.postsuspend(L1)).error).toBe(0);
    expect((await a.resume(L2)).error).toBe(0);
    const bits = [];
    for (const r of [0, 1, 2, 3, 4]) bits.push(await a.inSync(r, L2));
    expect(bits).toEqual([1, 1, 0, 1, 0]);
    expect(await a.syncCount(L2)).toBe(3);
    expect((await a.dtr(L1)).error).toBe(0);
    expect((await a.dtr(L1)).error).toBe(-22);
  });

  it("21. cluster: exclusive recovery", async () => {
    const c = await start([A, B]);
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("40960 clustered-core 1024");
    await b.up("40960 clustered-core 1024");
    const [i, r] = (await a.resyncWork()) as number[];
    expect(i).toBe(1);
    expect(((await b.resyncWork()) as number[])[0]).toBe(0);
    await a.setRegionSync(r!, true);
    expect(await b.resyncWork()).toEqual([1, r! + 1]);
    expect(await a.syncCount()).toBe(await b.syncCount());
    expect(await a.syncCount()).toBe(1);
  });

  it("22. cluster: a joining agent starts from the snapshot; a second one is ignored", async () => {
    const c = await start([A]);
    const a = await c.kernel(A);
    await a.up("40960 clustered-core 1024");
    for (let r = 0; r < 10; r++) await a.setRegionSync(r, true);
    await a.mark([20]);
    c.node(A).server.saveSnapshot();
    const snapshotSeq = c.order.latestSnapshot!.seq;
    await c.startNode(B);
    expect(c.node(B).server.lastSeq).toBeGreaterThan(snapshotSeq);
    const b = await c.kernel(B);
    expect((await b.ctr("40960 clustered-core 1024")).error).toBe(0);
    expect((await b.resume()).error).toBe(0);
    expect(await b.inSync(5)).toBe(1);
    expect(await b.syncCount()).toBe(10);
    // P26: the mark list came along — B's clear cannot clean A's marked region.
    await b.setRegionSync(20, true);
    await b.clear([20]);
    expect(await b.isClean(20)).toBe(0);
    // A later checkpoint (from C) is not adopted by a running replica (P16).
    await c.startNode(C);
    c.node(C).server.saveSnapshot();
    expect(c.node(B).server.clusterLog.adoptSnapshot(c.order.latestSnapshot!.bytes).ok).toBe(false);
    expect(await b.syncCount()).toBe(11);
  });

  it("23. cluster: server hand-over with a request outstanding gets exactly one reply", async () => {
    let holdB = false;
    const c = await start([A, B], {
      order: { onPublish: (p) => (holdB && p.origin === B ? "hold" : "order") },
    });
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("40960 clustered-core 1024");
    await b.up("40960 clustered-core 1024");
    holdB = true;
    const seq = b.client.post(12);
    await eventually(() => c.order.held.length === 1, "B's request held");
    expect((await a.presuspend()).error).toBe(0);
    expect((await a.postsuspend()).error).toBe(0);
    holdB = false;
    c.order.releaseAll();
    const reply = await b.client.reply(seq);
    expect([reply.error, reply.dataSize]).toEqual([0, 16]);
    expect(readU64(reply.data, 0)).toBe(1);
    const after = await b.syncCount(); // a later request: any duplicate would have arrived first
    expect(after).toBe(0);
    expect(b.client.received.filter((r) => r.seq === seq).length).toBe(1);
  });

  it("24. retransmission idempotency", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("40960 clustered-core 1024");
    await a.setRegionSync(4, true);
    await a.setRegionSync(4, true);
    expect(await a.syncCount()).toBe(1);
    const first = await a.resyncWork();
    const again = await a.resyncWork(); // resent after a lost reply: new seq
    expect(again).toEqual(first);
  });

  it("25. -ESRCH recovery: restarted server, re-CTR with NUL, RESUME, original request", async () => {
    const { cluster: c, path } = await startDisk();
    const socketPath = c.node(A).socketPath;
    const a = await c.kernel(A);
    const args = "2097152 clustered-disk 7:0 1024 nosync";
    await a.up(args);
    await c.stopNode(A);
    await a.client.closed;
    // The server comes back on the same socket and log device; the kernel re-constructs.
    await c.startNode(A, { overrides: { "7:0": path }, socketPath });
    const k = await c.kernel(A);
    const reCtr = await k.ctr(args, { nul: true });
    expect([reCtr.error, reCtr.dataSize]).toEqual([0, 0]);
    expect((await k.resume()).error).toBe(0);
    expect((await k.flush([3])).error).toBe(0);
    expect(await diskBit(path, 3)).toBe(0);
  });
});
