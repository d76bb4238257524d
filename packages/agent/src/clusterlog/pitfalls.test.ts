import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  eventually,
  L2,
  TestCluster,
  type TestClusterOptions,
} from "../../testing/server-harness.ts";
import { ascii, readU64, u64 } from "../../testing/uapi-client.ts";
import {
  FileLogDevices,
  type IoOutcome,
  type LogDevice,
  type LogDeviceProvider,
} from "./log-devices.ts";

// CLUSTERLOG-SPEC.md §8, one test per pitfall that applies to one host (several nodes
// here are several servers on one in-process order, each with its own socket). Not
// applicable here: P18 (checkpoint size limits of a message bus — the in-process order
// has none; the JetStream bus chunks snapshots).

const A = 1;
const B = 2;
const MiB = 1 << 20;

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

async function start(nodes: number[] = [A], options: TestClusterOptions = {}) {
  cluster = await TestCluster.create(options);
  for (const id of nodes) await cluster.startNode(id);
  return cluster;
}

/** A provider whose writes can be failed or held at the fdatasync, over real files. */
class GatedDevices implements LogDeviceProvider {
  failWrites = false;
  #gate: Promise<void> | null = null;
  #open: (() => void) | null = null;
  syncsHeld = 0;
  constructor(readonly inner: FileLogDevices) {}
  hold(): void {
    this.#gate = new Promise((resolve) => {
      this.#open = resolve;
    });
  }
  release(): void {
    this.#open?.();
    this.#gate = null;
  }
  async open(logDevice: string): Promise<IoOutcome<LogDevice>> {
    const opened = await this.inner.open(logDevice);
    if (!opened.ok) return opened;
    const device = opened.value;
    return {
      ok: true,
      value: {
        read: (length) => device.read(length),
        close: () => device.close(),
        writeDurably: async (image) => {
          if (this.failWrites) return { ok: false, errno: -5, message: "injected EIO" };
          const gate = this.#gate;
          if (gate) {
            this.syncsHeld++;
            await gate;
          }
          return device.writeDurably(image);
        },
      },
    };
  }
}

async function gatedNode(c: TestCluster, id: number, files: Record<string, string>) {
  const devices = new GatedDevices(
    new FileLogDevices({ overrides: new Map(Object.entries(files)) }),
  );
  await c.startNode(id, { devices });
  return devices;
}

async function file(c: TestCluster, name: string, contents?: Uint8Array): Promise<string> {
  const path = join(c.dir, name);
  await writeFile(path, contents ?? new Uint8Array(MiB));
  return path;
}

describe("§8 pitfalls through the socket", () => {
  it("P1: every handler is idempotent, and a re-published operation is applied once", async () => {
    let duplicate = false;
    const c = await start([A], { order: { onPublish: () => (duplicate ? "duplicate" : "order") } });
    const a = await c.kernel(A);
    await a.up("40960 clustered-core 1024");
    await a.setRegionSync(4, true);
    await a.setRegionSync(4, true);
    expect(await a.syncCount()).toBe(1);
    const work = await a.resyncWork();
    expect(await a.resyncWork()).toEqual(work);
    duplicate = true;
    await a.mark([9]);
    duplicate = false;
    const before = c.order.lastSeq;
    c.order.releaseAll(); // the second copy, same msgId: not ordered again
    expect(c.order.lastSeq).toBe(before);
    await a.setRegionSync(9, true);
    await a.clear([9]);
    expect(await a.isClean(9)).toBe(1);
  });

  it("P2: overlapping seqs on two connections, and a reply for a gone connection is dropped", async () => {
    let hold = false;
    const c = await start([A], { order: { onPublish: () => (hold ? "hold" : "order") } });
    const x = await c.kernel(A);
    const y = await c.kernel(A);
    await x.up("40960 clustered-core 1024 nosync");
    x.client.post(7, u64(3), { seq: 500 });
    y.client.post(7, u64(99), { seq: 500 });
    const [rx, ry] = [await x.client.reply(500), await y.client.reply(500)];
    expect([rx.error, readU64(rx.data)]).toEqual([0, 1]);
    expect(ry.error).toBe(-22);
    hold = true;
    x.client.post(12, undefined, { seq: 900 });
    await eventually(() => c.order.held.length === 1);
    x.client.destroy();
    await eventually(() => c.node(A).server.stats.abandoned === 1);
    const z = await c.kernel(A);
    hold = false;
    c.order.releaseAll();
    expect(c.node(A).server.stats.dropped).toBe(1);
    expect(await z.syncCount()).toBe(40);
    expect(z.client.received.map((r) => r.seq)).not.toContain(900);
  });

  it("P3: no-payload replies carry data_size 0; a CTR reply fits 128 bytes with its NUL", async () => {
    const c = await start();
    const a = await c.kernel(A);
    const ctr = await a.ctr("2097152 clustered-disk 253:2 1024");
    expect(ctr.dataSize).toBeLessThanOrEqual(128);
    expect(ctr.data[ctr.dataSize - 1]).toBe(0);
    expect((await a.dtr()).dataSize).toBe(0);
  });

  it("P4/P5: a re-CTR after -ESRCH succeeds without a device name; other arguments are refused", async () => {
    const c = await start();
    const a = await c.kernel(A);
    const args = "2097152 clustered-disk 7:0 1024";
    expect((await a.ctr(args)).dataSize).toBe(4);
    const reCtr = await a.ctr(args, { nul: true });
    expect([reCtr.error, reCtr.dataSize]).toEqual([0, 0]);
    expect((await a.ctr("2097152 clustered-disk 7:0 2048")).error).toBe(-22);
  });

  it("P6: CTR is parsed by length, NUL or not", async () => {
    const c = await start();
    const a = await c.kernel(A);
    expect((await a.send(1, ascii("4096 clustered-core 1024"))).error).toBe(0);
    expect((await a.send(1, ascii("4096 clustered-core 1024", true), { luid: L2 })).error).toBe(0);
    expect(await a.regionSize(L2)).toBe(1024);
  });

  it("P7/P8: integrated flush marks; a clear and mark of one region in one flush leaves it dirty", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("40960 clustered-core 1024 nosync");
    await a.flush([1, 2]);
    expect([await a.isClean(1), await a.isClean(2), await a.isClean(3)]).toEqual([0, 0, 1]);
    await a.clear([3]);
    await a.flush([3]);
    expect(await a.isClean(3)).toBe(0);
  });

  it("P9/P10/P11: recovery order, clears by other nodes, double clears", async () => {
    const c = await start([A, B]);
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("40960 clustered-core 1024");
    await b.up("40960 clustered-core 1024");
    await a.mark([6]);
    await b.mark([6]);
    await a.setRegionSync(6, true);
    await a.clear([6]);
    expect(await b.isClean(6)).toBe(0); // P10: B still has it
    await b.clear([6]);
    await b.clear([6]); // P11
    expect(await a.isClean(6)).toBe(1); // P9: in sync, no marks left
  });

  it("P12: boolean answers are exactly 0 or 1 on the wire", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("409600 clustered-core 1024 nosync");
    for (const region of [0, 5, 31, 37, 63, 399]) {
      const clean = await a.send(7, u64(region));
      const sync = await a.send(8, u64(region));
      expect([...clean.data]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
      expect([...sync.data]).toEqual([1, 0, 0, 0, 0, 0, 0, 0]);
    }
  });

  it("P13: IN_SYNC stays 1 after full sync until the next resume", async () => {
    const c = await start([A, B]);
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("4096 clustered-core 1024");
    await b.up("4096 clustered-core 1024");
    for (const r of [0, 1, 2, 3]) await a.setRegionSync(r, true);
    expect(await a.inSync(2)).toBe(1);
    await b.setRegionSync(2, false); // B reports a write failure
    expect(await a.inSync(2)).toBe(1);
    await a.postsuspend();
    await a.resume();
    expect(await a.inSync(2)).toBe(0);
  });

  it("P14: a nosync mirror's hint reaches region_count", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("8192 clustered-core 1024 nosync");
    await a.resyncWork();
    expect(await a.remoteRecovering(3)).toEqual([0, 8]);
  });

  it("P15: STATUS_INFO shows the server's log-device health on every node", async () => {
    cluster = await TestCluster.create();
    const c = cluster;
    const fa = await file(c, "a.log");
    const fb = await file(c, "b.log");
    const devicesA = await gatedNode(c, A, { "7:0": fa });
    await gatedNode(c, B, { "7:0": fb });
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("2097152 clustered-disk 7:0 1024 nosync");
    await b.up("2097152 clustered-disk 7:0 1024 nosync");
    devicesA.failWrites = true;
    expect((await b.flush([3])).error).toBe(-5); // A, the server, writes and fails
    expect(await b.statusInfo()).toBe("3 clustered-disk 7:0 D");
    expect(await a.statusInfo()).toBe("3 clustered-disk 7:0 D");
  });

  it("P16/P17/P26/P27: a joining agent takes one snapshot, continues right after it, keeps marks and cursor", async () => {
    const c = await start([A]);
    const a = await c.kernel(A);
    await a.up("40960 clustered-core 1024");
    expect(await a.resyncWork()).toEqual([1, 0]);
    await a.setRegionSync(0, true);
    await a.mark([30]);
    c.node(A).server.saveSnapshot();
    await a.mark([31]); // after the snapshot: replayed from the order
    await c.startNode(B);
    const sa = c.node(A).server;
    const sb = c.node(B).server;
    expect(sb.lastSeq).toBe(sa.lastSeq);
    expect(sb.clusterLog.snapshot()).toEqual(sa.clusterLog.snapshot());
    const b = await c.kernel(B);
    await b.up("40960 clustered-core 1024");
    expect(await b.resyncWork()).toEqual([1, 1]); // P27: the cursor came along
    for (const r of [30, 31]) {
      await b.setRegionSync(r, true);
      await b.clear([r]);
      expect(await b.isClean(r)).toBe(0); // P26: A's marks came along
    }
    expect(sb.clusterLog.adoptSnapshot(sa.clusterLog.snapshot()).ok).toBe(false); // P16
  });

  it("P21: regions ≥ region_count are rejected everywhere", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("4096 clustered-core 1024");
    expect(await a.isClean(4)).toBe(-22);
    expect(await a.inSync(4)).toBe(-22);
    expect(await a.remoteRecovering(4)).toBe(-22);
    expect((await a.mark([1, 4])).error).toBe(-22);
    expect((await a.flush([4])).error).toBe(-22);
    expect((await a.setRegionSync(4, true)).error).toBe(-22);
    expect(await a.isClean(1)).toBe(0);
  });

  it("P22: unknown types get -EINVAL, type 0 -EAGAIN, the type is masked to 8 bits", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("4096 clustered-core 1024 nosync");
    expect((await a.send(18)).error).toBe(-22);
    expect((await a.send(255)).error).toBe(-22);
    const zero = await a.client.send(0, undefined, { rawType: 0x1000 });
    expect([zero.error, zero.dataSize, zero.requestType]).toEqual([-11, 0, 0x1000]);
    const masked = await a.client.send(7, u64(1), { rawType: 0xabc00 + 7 });
    expect([masked.error, readU64(masked.data), masked.requestType]).toEqual([0, 1, 0xabc07]);
  });

  it("P23: a lost publication is re-published on reconnection and answered once", async () => {
    let drop = false;
    const c = await start([A], { order: { onPublish: () => (drop ? "drop" : "order") } });
    const a = await c.kernel(A);
    await a.up("4096 clustered-core 1024");
    drop = true;
    const seq = a.client.post(12);
    await eventually(() => c.node(A).server.stats.published === 3);
    drop = false;
    c.order.reconnect(A);
    const reply = await a.client.reply(seq);
    expect([reply.error, readU64(reply.data, 0), readU64(reply.data, 8)]).toEqual([0, 1, 0]);
    expect(await a.resyncWork()).toEqual([1, 0]);
    expect(a.client.received.filter((r) => r.seq === seq)).toHaveLength(1);
  });

  it("P24/P25: a failed node's recovery slot is released and its marked regions resync", async () => {
    const c = await start([A, B]);
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("40960 clustered-core 1024 nosync");
    await b.up("40960 clustered-core 1024 nosync");
    await b.mark([7]);
    c.order.fail(B);
    expect(await a.inSync(7)).toBe(0);
    expect(await a.resyncWork()).toEqual([1, 7]);
    await a.setRegionSync(7, true);
    await a.clear([7]);
    expect(await a.isClean(7)).toBe(1);

    await c.startNode(3);
    const cc = await c.kernel(3);
    await cc.up("40960 clustered-core 1024");
    await a.setRegionSync(8, false);
    // A's kernel saw the full sync count (hint rc): held until re-armed (hint guard).
    expect(await cc.resyncWork()).toEqual([0, 0]);
    await a.suspendResume();
    expect(await cc.resyncWork()).toEqual([1, 8]); // C recovers 8 …
    c.order.fail(3); // … and dies: the slot comes back to A
    expect(await a.resyncWork()).toEqual([1, 8]);
  });

  it("P28: SET_REGION_SYNC frees the recovery slot only for the region being recovered", async () => {
    const c = await start([A, B]);
    const a = await c.kernel(A);
    const b = await c.kernel(B);
    await a.up("40960 clustered-core 1024");
    await b.up("40960 clustered-core 1024");
    expect(await a.resyncWork()).toEqual([1, 0]);
    await b.setRegionSync(5, false); // a write-failure report for another region
    expect(((await b.resyncWork()) as number[])[0]).toBe(0);
    await a.setRegionSync(0, true);
    expect(await b.resyncWork()).toEqual([1, 1]);
  });

  it("P29: a presuspended server's hint comes from the real state", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("4096 clustered-core 1024");
    await a.presuspend();
    expect(await a.remoteRecovering(2)).toEqual([1, 0]);
  });

  it("P30: every error is a negative errno", async () => {
    const c = await start();
    const a = await c.kernel(A);
    const errors = [];
    for (let type = 0; type <= 20; type++) errors.push((await a.send(type, u64(99))).error);
    expect(errors.every((e) => e <= 0)).toBe(true);
    expect(errors.some((e) => e < 0)).toBe(true);
  });

  it("P31: a nosync sync count covers exactly [0, region_count)", async () => {
    const c = await start();
    const a = await c.kernel(A);
    expect((await a.ctr("5120 clustered-core 1024 nosync")).error).toBe(0);
    expect(await a.syncCount()).toBe(5);
    await a.resume();
    expect(await a.syncCount()).toBe(5);
  });

  it("P32: `sync` ignores the bits of a valid disk header", async () => {
    cluster = await TestCluster.create();
    const image = new Uint8Array(MiB);
    const view = new DataView(image.buffer);
    view.setUint32(0, 0x4d695272, true);
    view.setUint32(4, 2, true);
    view.setBigUint64(8, 2048n, true);
    image.fill(0xff, 1024, 1024 + 256);
    const path = await file(cluster, "synced.log", image);
    await cluster.startNode(A, { overrides: { "7:0": path } });
    const a = await cluster.kernel(A);
    await a.up("2097152 clustered-disk 7:0 1024 sync");
    expect(await a.syncCount()).toBe(0);
    expect((await readFile(path))[1024]).toBe(0);
  });

  it("P33: the FLUSH reply waits until the write and fdatasync are done", async () => {
    cluster = await TestCluster.create();
    const c = cluster;
    const path = await file(c, "p33.log");
    const devices = await gatedNode(c, A, { "7:0": path });
    const a = await c.kernel(A);
    await a.up("2097152 clustered-disk 7:0 1024 nosync");
    devices.hold();
    const seq = a.client.post(9, u64(12));
    await eventually(() => devices.syncsHeld === 1);
    expect(await a.isClean(12)).toBe(0); // applied, but …
    expect(a.client.received.some((r) => r.seq === seq)).toBe(false); // … not answered
    const syncs = devices.inner.stats.syncs;
    devices.release();
    const reply = await a.client.reply(seq);
    expect(reply.error).toBe(0);
    expect(devices.inner.stats.syncs).toBe(syncs + 1);
    expect(((await readFile(path))[1025]! >> 4) & 1).toBe(0);
  });

  it("P35: STATUS_INFO of a suspended log fails cleanly (-ENOENT)", async () => {
    const c = await start();
    const a = await c.kernel(A);
    await a.up("4096 clustered-core 1024");
    await a.presuspend();
    await a.postsuspend();
    expect(await a.statusInfo()).toBe(-2);
    expect(await a.statusTable()).toBe("clustered-core 1024  ");
  });

  it("P36: a stalled log device holds up only its own log", async () => {
    cluster = await TestCluster.create();
    const c = cluster;
    const slow = await file(c, "slow.log");
    const devices = await gatedNode(c, A, { "7:0": slow });
    const x = await c.kernel(A);
    const y = await c.kernel(A);
    x.uuid = "LVM-slow";
    await x.up("2097152 clustered-disk 7:0 1024 nosync");
    devices.hold();
    const seq = x.client.post(9, u64(1));
    await eventually(() => devices.syncsHeld === 1);
    y.uuid = "LVM-other";
    await y.up("4096 clustered-core 1024 nosync");
    await y.flush([2]);
    expect(await y.isClean(2)).toBe(0);
    expect(await x.statusTable()).toBe("clustered-disk 7:0 1024 nosync  ");
    devices.release();
    expect((await x.client.reply(seq)).error).toBe(0);
  });

  it("P19/P20: little-endian fields; the disk bitmap starts at byte 1024 with no count word", async () => {
    cluster = await TestCluster.create();
    const path = await file(cluster, "p20.log");
    await cluster.startNode(A, { overrides: { "7:0": path } });
    const a = await cluster.kernel(A);
    await a.up("2097152 clustered-disk 7:0 65536 nosync");
    const size = await a.send(6);
    expect([...size.data]).toEqual([0, 0, 1, 0, 0, 0, 0, 0]);
    await a.flush([0, 9]);
    const bytes = await readFile(path);
    expect([bytes[1024], bytes[1025]]).toEqual([0xfe, 0xfd]); // region n: byte 1024 + n/8, bit n%8
    expect(bytes[1028]).toBe(0); // padding beyond region_count stays 0
  });
});
