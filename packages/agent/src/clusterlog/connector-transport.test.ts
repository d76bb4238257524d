import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CN_IDX_DM,
  decodeConnectorMessage,
  encodeAscii,
  encodeConnectorRequest,
  encodeRequest,
  encodeU64,
  encodeU64List,
  makeRequest,
} from "@mirrorplane/clusterlog";
import { loadNetlink, NETLINK_CONNECTOR, NetlinkSocket } from "@mirrorplane/netlink";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ConnectorTransport, startConnectorTransport } from "./connector-transport.ts";
import { InProcessOrder } from "./in-process-bus.ts";
import { FileLogDevices } from "./log-devices.ts";
import { ClusterLogServer } from "./server.ts";

// The kernel bridge over real AF_NETLINK sockets: a "kernel" socket multicasts
// dm_ulog_requests in connector framing (spec §1.1) to the transport's group and receives
// the replies the transport sends to its port id. The real kernel module is not on this
// machine, so the kernel's own sending and matching code is what this cannot exercise.
// A test group (not 7) keeps these tests away from anything serving the real group.

const TEST_GROUP = 23;
const real = loadNetlink().ok && process.getuid?.() === 0;
const UUID = "LVM-connector";
const LUID = 0xffff_8880_1234_5678n;

interface KernelReply {
  readonly bytes: Uint8Array;
  readonly nlmsgLen: number;
  readonly nlmsgType: number;
  readonly cnSeq: number;
  readonly ack: number;
  readonly cnLen: number;
  readonly seq: number;
  readonly error: number;
  readonly data: Uint8Array;
}

class FakeKernel {
  readonly socket = NetlinkSocket.open({ protocol: NETLINK_CONNECTOR });
  readonly replies: KernelReply[] = [];
  #waiters: ((r: KernelReply) => void)[] = [];
  seq = 1;

  constructor(readonly group: number) {
    this.socket.start(
      (d) => {
        const decoded = decodeConnectorMessage(d.bytes);
        if (!decoded.ok) throw new Error(decoded.error.message);
        const m = decoded.value;
        const view = new DataView(d.bytes.buffer);
        const reply: KernelReply = {
          bytes: d.bytes,
          nlmsgLen: view.getUint32(0, true),
          nlmsgType: view.getUint16(4, true),
          cnSeq: m.cn.seq,
          ack: m.cn.ack,
          cnLen: m.cn.len,
          seq: m.request ? m.request.seq : m.cn.seq,
          error: m.request ? m.request.error : -m.cn.ack,
          data: m.request ? m.request.data : new Uint8Array(0),
        };
        this.replies.push(reply);
        this.#waiters.shift()?.(reply);
      },
      (e) => {
        throw e;
      },
    );
  }

  /** Send like dm-log-userspace: one request, multicast to the group; await its answer. */
  request(
    type: number,
    data?: Uint8Array,
    raw?: (bytes: Uint8Array) => void,
  ): Promise<KernelReply> {
    const seq = this.seq++;
    const encoded = encodeRequest(
      makeRequest({ node: 0, type, uuid: UUID, luid: LUID, seq, data }),
    );
    if (!encoded.ok) throw new Error(encoded.error.message);
    const bytes = encoded.value;
    raw?.(bytes);
    const reply = new Promise<KernelReply>((resolve) => this.#waiters.push(resolve));
    const sent = this.socket.send(encodeConnectorRequest(bytes, seq), 0, 1 << (this.group - 1));
    if (sent < 0) throw new Error(`send failed ${sent}`);
    return reply;
  }

  close(): void {
    this.socket.close();
  }
}

describe.runIf(real)("the netlink connector transport", () => {
  let dir: string;
  let server: ClusterLogServer;
  let transport: ConnectorTransport;
  let kernel: FakeKernel;
  const lines: string[] = [];

  async function startServer(group = TEST_GROUP): Promise<void> {
    const log = pino({ level: "debug" }, { write: (l: string) => lines.push(l) });
    server = new ClusterLogServer({
      bus: new InProcessOrder().bus(1),
      devices: new FileLogDevices({ overrides: new Map([["7:0", join(dir, "log-7-0")]]) }),
      log,
      snapshotEvery: 0,
      snapshotIntervalMs: 0,
    });
    await server.start();
    const started = startConnectorTransport({
      server,
      log,
      group,
      replyPortId: kernel.socket.portId,
      lockPath: null,
    });
    if (!started.ok) throw new Error(started.reason);
    transport = started.transport;
  }

  async function stopServer(): Promise<void> {
    transport.close();
    await server.stop({ drainTimeoutMs: 500 });
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "mp-connector-"));
    kernel = new FakeKernel(TEST_GROUP);
    await startServer();
  });
  afterEach(async () => {
    await stopServer();
    kernel.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("answers scenario 1's MARK with the exact 196-byte reply (cn seq 0, header seq 42)", async () => {
    expect((await kernel.request(1, encodeAscii("2097152 clustered-core 1024"))).error).toBe(0);
    expect((await kernel.request(5)).error).toBe(0);
    kernel.seq = 42;
    let sentHeader = new Uint8Array(0);
    const reply = await kernel.request(10, encodeU64List([5, 9]), (b) => {
      sentHeader = b.slice(0, 160);
    });
    expect(reply.error).toBe(0);
    expect(reply.bytes.length).toBe(196);
    expect(reply.nlmsgLen).toBe(196);
    expect(reply.nlmsgType).toBe(3);
    const view = new DataView(reply.bytes.buffer);
    expect(view.getUint32(8, true)).toBe(0); // nlmsg seq
    expect(view.getUint32(12, true)).toBe(transport.portId); // nlmsg pid = ours
    expect([...reply.bytes.subarray(16, 36)]).toEqual([
      7, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 160, 0, 0, 0,
    ]);
    // The request header comes back with error 0 and data_size 0; the seq stays 42.
    const expected = sentHeader.slice();
    new DataView(expected.buffer).setUint32(156, 0, true);
    expect([...reply.bytes.subarray(36)]).toEqual([...expected]);
    expect(reply.seq).toBe(42);
  });

  it("acknowledges CLEAR_REGION with a bare ACK (cn len 0, cn seq = request seq, ack 0)", async () => {
    await kernel.request(1, encodeAscii("4096 clustered-core 1024"));
    await kernel.request(5);
    const clear = await kernel.request(11, encodeU64List([3]));
    expect(clear.bytes.length).toBe(36);
    expect(clear.cnLen).toBe(0);
    expect(clear.ack).toBe(0);
    expect(clear.cnSeq).toBe(kernel.seq - 1);
    expect(transport.stats.acks).toBe(1);
  });

  it("NACKs a request of type 0 with EAGAIN so the kernel resends (P22)", async () => {
    const nack = await kernel.request(0);
    expect(nack.cnLen).toBe(0);
    expect(nack.ack).toBe(11);
  });

  it("serves resync work and IS_REMOTE_RECOVERING with 16-byte payloads", async () => {
    await kernel.request(1, encodeAscii("4096 clustered-core 1024"));
    await kernel.request(5);
    const recovering = await kernel.request(17, encodeU64(2));
    expect(recovering.data.length).toBe(16);
    const work = await kernel.request(12);
    expect([...new BigUint64Array(work.data.slice().buffer)]).toEqual([1n, 2n]);
  });

  it("after the server vanished, the kernel's re-CTR (NUL counted, P4) and RESUME succeed", async () => {
    const ctr = await kernel.request(1, encodeAscii("2097152 clustered-disk 7:0 1024"));
    expect(new TextDecoder().decode(ctr.data)).toBe("7:0\0"); // v3: the device name
    expect((await kernel.request(5)).error).toBe(0);
    await stopServer();
    await startServer();
    // §1.5: CTR again with data_size = strlen + 1 and no reply buffer, then RESUME.
    const reCtr = await kernel.request(1, encodeAscii("2097152 clustered-disk 7:0 1024", true));
    expect(reCtr.error).toBe(0);
    expect(reCtr.data.length).toBe(0); // P4: a device name here would be -ENOSPC
    expect((await kernel.request(5)).error).toBe(0);
    expect((await kernel.request(9, encodeU64List([7]))).error).toBe(0);
  });

  it("ignores other connector users' messages and drops incomplete ones", async () => {
    const other = new Uint8Array(36 + 8);
    const v = new DataView(other.buffer);
    v.setUint32(0, other.length, true);
    v.setUint32(16, 1, true); // cn_proc
    v.setUint32(20, 1, true);
    v.setUint16(32, 8, true);
    kernel.socket.send(other, 0, 1 << (TEST_GROUP - 1));
    const short = new Uint8Array(36 + 40);
    const s = new DataView(short.buffer);
    s.setUint32(0, short.length, true);
    s.setUint32(16, 7, true);
    s.setUint32(20, 1, true);
    s.setUint16(32, 40, true);
    kernel.socket.send(short, 0, 1 << (TEST_GROUP - 1));
    // A request after both is still answered, and nothing was answered for them.
    expect((await kernel.request(14)).error).toBe(-22);
    expect(transport.stats.foreign).toBe(1);
    expect(transport.stats.malformed).toBe(1);
    expect(kernel.replies.length).toBe(1);
  });
});

describe.runIf(real)("the connector on the real group 7", () => {
  it("joins CN_IDX_DM and the kernel lists the membership", async () => {
    const log = pino({ level: "silent" });
    const server = new ClusterLogServer({
      bus: new InProcessOrder().bus(1),
      devices: new FileLogDevices(),
      log,
      snapshotIntervalMs: 0,
    });
    await server.start();
    const dir = await mkdtemp(join(tmpdir(), "mp-connector-lock-"));
    const lockPath = join(dir, "connector.lock");
    const started = startConnectorTransport({ server, log, lockPath });
    expect(started.ok).toBe(true);
    // While it serves, no second server of this host may join: the lock is held.
    const second = startConnectorTransport({ server, log, lockPath });
    expect(second).toMatchObject({ ok: false, held: true });
    expect(!second.ok && second.reason).toMatch(
      new RegExp(`another connector server holds ${lockPath} \\(pid ${process.pid}\\)`),
    );
    if (started.ok) started.transport.close();
    // Closed: it left the group, and the next one may take over.
    const third = startConnectorTransport({ server, log, lockPath });
    expect(third.ok).toBe(true);
    if (third.ok) third.transport.close();
    await server.stop({ drainTimeoutMs: 100 });
    await rm(dir, { recursive: true, force: true });
    expect(CN_IDX_DM).toBe(7);
  });
});
