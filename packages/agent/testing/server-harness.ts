import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClusterLogOptions } from "@mirrorplane/clusterlog";
import { pino } from "pino";
import { InProcessOrder, type InProcessOrderOptions } from "../src/clusterlog/in-process-bus.ts";
import { FileLogDevices, type LogDeviceProvider } from "../src/clusterlog/log-devices.ts";
import { ClusterLogServer } from "../src/clusterlog/server.ts";
import { ascii, readS64, readU64, TestClient, text, u64, type WireReply } from "./uapi-client.ts";

// Test support: servers on real Unix sockets over one in-process order (one member per
// node id), and a kernel-like client with one method per request (spec §2).

export const U = "LVM-test";

/** Wait (without asserting any duration) until `condition` holds. */
export async function eventually(condition: () => boolean, what = "condition"): Promise<void> {
  for (let i = 0; i < 5000; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`${what} never became true`);
}
export const L1 = 0x1111n;
export const L2 = 0x2222n;

export interface TestNodeOptions {
  readonly devices?: LogDeviceProvider;
  readonly overrides?: Record<string, string>;
  readonly root?: string;
  readonly socketPath?: string;
}

export interface TestClusterOptions {
  readonly order?: InProcessOrderOptions;
  readonly clusterLog?: ClusterLogOptions;
  readonly snapshotEvery?: number;
  readonly snapshotBytesPerTurn?: number;
}

export class TestNode {
  constructor(
    readonly server: ClusterLogServer,
    readonly socketPath: string,
    readonly devices: LogDeviceProvider,
    /** The server's log lines (pino JSON), for asserting what it logged. */
    readonly logLines: string[],
  ) {}

  async kernel(): Promise<Kernel> {
    return new Kernel(await TestClient.connect(this.socketPath));
  }

  get fileStats() {
    return (this.devices as FileLogDevices).stats;
  }
}

export class TestCluster {
  readonly nodes = new Map<number, TestNode>();
  readonly #kernels: Kernel[] = [];

  constructor(
    readonly dir: string,
    readonly order: InProcessOrder,
    readonly options: TestClusterOptions,
  ) {}

  static async create(options: TestClusterOptions = {}): Promise<TestCluster> {
    const dir = await mkdtemp(join(tmpdir(), "mp-clusterlog-"));
    return new TestCluster(dir, new InProcessOrder(options.order ?? {}), options);
  }

  /** Start node `id`'s server (joining the order) and listen on its own socket. */
  async startNode(id: number, options: TestNodeOptions = {}): Promise<TestNode> {
    const logLines: string[] = [];
    const log = pino({ level: "debug" }, { write: (line: string) => logLines.push(line) });
    const devices =
      options.devices ??
      new FileLogDevices({
        root: options.root ?? "/",
        overrides: new Map(Object.entries(options.overrides ?? {})),
      });
    const server = new ClusterLogServer({
      bus: this.order.bus(id),
      devices,
      log,
      snapshotEvery: this.options.snapshotEvery ?? 0,
      snapshotIntervalMs: 0,
      ...(this.options.snapshotBytesPerTurn
        ? { snapshotBytesPerTurn: this.options.snapshotBytesPerTurn }
        : {}),
      ...(this.options.clusterLog ? { clusterLog: this.options.clusterLog } : {}),
    });
    await server.start();
    const socketPath = options.socketPath ?? join(this.dir, `node-${id}.sock`);
    await server.listenUnix(socketPath);
    const node = new TestNode(server, socketPath, devices, logLines);
    this.nodes.set(id, node);
    return node;
  }

  node(id: number): TestNode {
    const node = this.nodes.get(id);
    if (!node) throw new Error(`no node ${id}`);
    return node;
  }

  async kernel(id: number): Promise<Kernel> {
    const kernel = await this.node(id).kernel();
    this.#kernels.push(kernel);
    return kernel;
  }

  async stopNode(id: number): Promise<void> {
    const node = this.nodes.get(id);
    if (!node) return;
    this.nodes.delete(id);
    await node.server.stop({ drainTimeoutMs: 2000 });
  }

  async close(): Promise<void> {
    for (const kernel of this.#kernels) kernel.client.destroy();
    for (const id of [...this.nodes.keys()]) await this.stopNode(id);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A kernel's view: one method per request type; replies are the raw wire replies. */
export class Kernel {
  constructor(readonly client: TestClient) {}

  set uuid(uuid: string) {
    this.client.uuid = uuid;
  }
  set luid(luid: bigint) {
    this.client.luid = luid;
  }

  send(
    type: number,
    data?: Uint8Array,
    opts: { luid?: bigint; uuid?: string; version?: number; seq?: number } = {},
  ) {
    return this.client.send(type, data, opts);
  }

  ctr(args: string, opts: { luid?: bigint; version?: number; nul?: boolean; uuid?: string } = {}) {
    return this.send(1, ascii(args, opts.nul ?? false), opts);
  }
  dtr(luid?: bigint) {
    return this.send(2, undefined, luid === undefined ? {} : { luid });
  }
  presuspend(luid?: bigint) {
    return this.send(3, undefined, luid === undefined ? {} : { luid });
  }
  postsuspend(luid?: bigint) {
    return this.send(4, undefined, luid === undefined ? {} : { luid });
  }
  resume(luid?: bigint) {
    return this.send(5, undefined, luid === undefined ? {} : { luid });
  }
  /** `dmsetup suspend` + `dmsetup resume`: how an agent re-arms its kernel's in_sync hint. */
  async suspendResume(luid?: bigint): Promise<void> {
    for (const step of [this.presuspend, this.postsuspend, this.resume]) {
      const r = await step.call(this, luid);
      if (r.error !== 0) throw new Error(`suspend/resume failed: ${r.error}`);
    }
  }
  /** CTR + RESUME, both must succeed. */
  async up(args: string, luid?: bigint): Promise<void> {
    const c = await this.ctr(args, luid === undefined ? {} : { luid });
    if (c.error !== 0) throw new Error(`CTR ${args} failed: ${c.error}`);
    const r = await this.resume(luid);
    if (r.error !== 0) throw new Error(`RESUME failed: ${r.error}`);
  }
  mark(regions: number[]) {
    return this.send(10, u64(...regions));
  }
  clear(regions: number[]) {
    return this.send(11, u64(...regions));
  }
  flush(regions: number[] = []) {
    return this.send(9, regions.length ? u64(...regions) : undefined);
  }
  setRegionSync(region: number, inSync: boolean) {
    return this.send(13, u64(region, inSync ? 1 : 0));
  }
  statusInfoReply() {
    return this.send(15);
  }

  async value(reply: Promise<WireReply>): Promise<number> {
    const r = await reply;
    if (r.error !== 0) return r.error;
    if (r.dataSize !== 8) throw new Error(`expected 8 bytes, got ${r.dataSize}`);
    return readS64(r.data);
  }
  isClean(region: number) {
    return this.value(this.send(7, u64(region)));
  }
  inSync(region: number, luid?: bigint) {
    return this.value(this.send(8, u64(region), luid === undefined ? {} : { luid }));
  }
  syncCount(luid?: bigint) {
    return this.value(this.send(14, undefined, luid === undefined ? {} : { luid }));
  }
  regionSize(luid?: bigint) {
    return this.value(this.send(6, undefined, luid === undefined ? {} : { luid }));
  }
  async pair(reply: Promise<WireReply>): Promise<[number, number] | number> {
    const r = await reply;
    if (r.error !== 0) return r.error;
    if (r.dataSize !== 16) throw new Error(`expected 16 bytes, got ${r.dataSize}`);
    return [readS64(r.data, 0), readU64(r.data, 8)];
  }
  resyncWork() {
    return this.pair(this.send(12));
  }
  remoteRecovering(region: number) {
    return this.pair(this.send(17, u64(region)));
  }
  async statusInfo(): Promise<string | number> {
    const r = await this.send(15);
    return r.error === 0 ? text(r.data) : r.error;
  }
  async statusTable(luid?: bigint): Promise<string | number> {
    const r = await this.send(16, undefined, luid === undefined ? {} : { luid });
    return r.error === 0 ? text(r.data) : r.error;
  }
}
