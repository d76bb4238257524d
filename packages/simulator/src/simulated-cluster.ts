import { closeSync, openSync, readSync, writeFileSync } from "node:fs";
import { mkdir, rm, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { ClusterBus } from "@mirrorplane/agent/clusterlog/bus";
import { InProcessOrder } from "@mirrorplane/agent/clusterlog/in-process-bus";
import { FileLogDevices } from "@mirrorplane/agent/clusterlog/log-devices";
import { HintRearmer } from "@mirrorplane/agent/clusterlog/rearm";
import { ClusterLogServer } from "@mirrorplane/agent/clusterlog/server";
import { ResyncWaker } from "@mirrorplane/agent/clusterlog/wake";
import type { ClusterLogOptions } from "@mirrorplane/clusterlog";
import { type Logger, pino } from "pino";
import { type SimKernelHost, SimMirror, type SimMirrorOptions } from "./kernel/dm-raid1.ts";
import { SocketUlogLink } from "./kernel/ulog-socket-link.ts";
import { KERNEL_TIMINGS, type KernelTimings, UlogClient } from "./kernel/ulog-transfer.ts";

// A cluster of agents with simulated kernels on one machine: every node runs a
// ClusterLogServer on its own Unix socket; every node's kernel runs every mirror (a
// clustered mirror is active on all nodes) over shared leg files and one shared log
// device file, as shared storage would be. The kernels reach their agents through a
// cuttable socket relay, so an agent can be "killed -9" (its connections drop without a
// reply, its replica is declared failed in the order) and started again.
//
// The invariant checker runs at every write acknowledgement: no replica of the log and
// not the on-disk log may call the region clean then.

export interface SimClusterOptions {
  readonly dir: string;
  readonly nodes: number;
  readonly timings?: KernelTimings;
  readonly log?: Logger;
  /**
   * A new bus for each start of node's agent (e.g. a JetStreamBus on a real NATS server);
   * default: one in-process order. `kill` aborts a bus that has `abort()` (no leave, its
   * heartbeat left to expire, so the survivors declare the node failed), as a killed
   * process would; the in-process order is told the node failed instead.
   */
  readonly busFor?: (node: number) => ClusterBus;
  readonly clusterLog?: ClusterLogOptions;
  /** Save a replica snapshot every this many operations (joiners start from it). */
  readonly snapshotEvery?: number;
}

export interface MirrorSpec {
  readonly name: string;
  readonly regions: number;
  readonly regionBytes: number;
  readonly legs?: number;
  /** A clustered-disk log on a shared file (default), or a core log. */
  readonly disk?: boolean;
  readonly sync?: "" | "nosync";
  readonly integratedFlush?: boolean;
  /** Secondary legs start with garbage in every `n`th region (so recovery has work). */
  readonly divergeEvery?: number;
  readonly recoveryDelayMs?: number;
}

export interface Violation {
  readonly mirror: string;
  readonly region: number;
  readonly where: string;
}

interface Agent {
  server: ClusterLogServer;
  readonly bus: ClusterBus;
  readonly socketPath: string;
  readonly rearmer: HintRearmer;
  readonly waker: ResyncWaker;
}

/** A Unix-socket relay the test can cut: the "process" boundary of an agent. */
class Relay {
  #server: Server | null = null;
  readonly #sockets = new Set<Socket>();
  constructor(
    readonly path: string,
    public target: string,
  ) {}

  async listen(): Promise<void> {
    await unlink(this.path).catch(() => {});
    this.#server = createServer((client) => {
      const upstream = createConnection(this.target);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => {});
      }
      client.pipe(upstream).pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.path, resolve));
  }

  /** Connections drop with nothing more delivered; nobody listens any more (-ESRCH). */
  async cut(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    await unlink(this.path).catch(() => {});
  }
}

export class SimCluster {
  readonly agents = new Map<number, Agent>();
  readonly hosts = new Map<number, SimKernelHost>();
  readonly #relays = new Map<number, Relay>();
  readonly mirrors = new Map<string, SimMirror[]>();
  readonly specs = new Map<string, MirrorSpec & { uuid: string; logFile: string | null }>();
  readonly violations: Violation[] = [];
  readonly order = new InProcessOrder();
  readonly log: Logger;
  readonly timings: KernelTimings;
  readonly #devices: FileLogDevices;
  readonly #overrides = new Map<string, string>();
  #nextMinor = 0;
  #incarnation = 0;

  private constructor(readonly options: SimClusterOptions) {
    this.log = options.log ?? pino({ level: "silent" });
    this.timings = options.timings ?? KERNEL_TIMINGS;
    this.#devices = new FileLogDevices({ overrides: this.#overrides });
  }

  static async start(options: SimClusterOptions): Promise<SimCluster> {
    await mkdir(options.dir, { recursive: true });
    const cluster = new SimCluster(options);
    for (let node = 1; node <= options.nodes; node++) {
      await cluster.#startAgent(node);
      const relay = new Relay(
        join(options.dir, `kernel-${node}.sock`),
        cluster.agents.get(node)!.socketPath,
      );
      await relay.listen();
      cluster.#relays.set(node, relay);
      cluster.hosts.set(node, {
        client: new UlogClient(new SocketUlogLink(relay.path), cluster.timings),
        remoteQueryNotBefore: 0,
      });
    }
    return cluster;
  }

  async #startAgent(node: number): Promise<void> {
    const socketPath = join(this.options.dir, `agent-${node}-${this.#incarnation++}.sock`);
    const bus = this.options.busFor?.(node) ?? this.order.bus(node);
    const server = new ClusterLogServer({
      bus,
      devices: this.#devices,
      log: this.log.child({ node }),
      snapshotEvery: this.options.snapshotEvery ?? 512,
      snapshotIntervalMs: 0,
      // A restarted agent sends the kernel through its re-construct path (spec §1.5).
      clusterLog: { esrchForUnknownLog: true, ...this.options.clusterLog },
    });
    await server.start();
    await server.listenUnix(socketPath);
    // The agent re-arms its own kernel when its hint holds resync work back (rearm.ts):
    // here the simulated kernel's suspend + resume, on a real host dmsetup's.
    const rearmer = new HintRearmer({
      server,
      log: this.log.child({ node }),
      checkIntervalMs: 100,
      retryMs: 500,
      minIntervalMs: 50,
      rearm: async (uuid) => {
        const host = this.hosts.get(node);
        const mirror = [...this.mirrors.values()]
          .flat()
          .find((m) => m.host === host && m.options.uuid === uuid);
        if (!mirror) throw new Error(`no mirror ${uuid} on node ${node}`);
        await mirror.suspendResume();
      },
    });
    rearmer.start();
    // …and wakes its idle kernel when resync work is given back (wake.ts): on a real host a
    // direct read of the mirror device, here a read of the simulated mirror.
    const waker = new ResyncWaker({
      server,
      log: this.log.child({ node }),
      wake: async (uuid) => {
        const host = this.hosts.get(node);
        const mirrors = [...this.mirrors.values()]
          .flat()
          .filter((m) => m.host === host && m.options.uuid === uuid);
        if (mirrors.length === 0) throw new Error(`no mirror ${uuid} on node ${node}`);
        await Promise.all(mirrors.map((m) => m.read(0, 0, 512)));
      },
    });
    waker.start();
    this.agents.set(node, { server, bus, socketPath, rearmer, waker });
  }

  /** Live replicas, lowest node first. */
  servers(): ClusterLogServer[] {
    return [...this.agents.entries()].sort((a, b) => a[0] - b[0]).map(([, a]) => a.server);
  }

  /** Create a mirror's files and activate it on every node's kernel, one after the other. */
  async addMirror(spec: MirrorSpec): Promise<SimMirror[]> {
    const legs = spec.legs ?? 2;
    const uuid = `LVM-sim-${spec.name}`;
    const size = spec.regions * spec.regionBytes;
    const legPaths: string[] = [];
    for (let leg = 0; leg < legs; leg++) {
      const path = join(this.options.dir, `${spec.name}-leg${leg}.img`);
      const bytes = new Uint8Array(size);
      if (leg > 0 && spec.divergeEvery) {
        for (let r = 0; r < spec.regions; r += spec.divergeEvery) {
          bytes.fill(0xa0 + leg, r * spec.regionBytes, r * spec.regionBytes + 64);
        }
      }
      writeFileSync(path, bytes);
      legPaths.push(path);
    }
    let logDevice: string | null = null;
    let logFile: string | null = null;
    if (spec.disk ?? true) {
      logDevice = `253:${this.#nextMinor++}`;
      logFile = join(this.options.dir, `${spec.name}-log.img`);
      writeFileSync(logFile, new Uint8Array(1024 + Math.ceil(spec.regions / 8) + 4096));
      this.#overrides.set(logDevice, logFile);
    }
    this.specs.set(spec.name, { ...spec, uuid, logFile });
    const list: SimMirror[] = [];
    for (const [node, host] of [...this.hosts].sort((a, b) => a[0] - b[0])) {
      const options: SimMirrorOptions = {
        name: spec.name,
        uuid,
        luid: BigInt(node) * 0x1000n + BigInt(this.mirrors.size + 1),
        regionCount: spec.regions,
        regionBytes: spec.regionBytes,
        legPaths,
        logDevice,
        sync: spec.sync ?? "",
        integratedFlush: spec.integratedFlush ?? false,
        ...(spec.recoveryDelayMs ? { recoveryDelayMs: spec.recoveryDelayMs } : {}),
      };
      const mirror = new SimMirror(host, options, {
        beforeAck: (m, region) => this.#checkAck(m, region, node),
      });
      await mirror.activate();
      list.push(mirror);
    }
    this.mirrors.set(spec.name, list);
    return list;
  }

  #checkAck(mirror: SimMirror, region: number, writer: number): void {
    const uuid = mirror.options.uuid;
    // The writing node's agent answered from its replica at this point of the order. A
    // replica still behind it (a bus that delivers to members one after the other, such
    // as JetStream) holds an earlier state of the same order, so it is checked only once
    // it has caught up to here; with the in-process order every replica is here already.
    const at = this.agents.get(writer)?.server.lastSeq ?? 0;
    for (const [node, agent] of this.agents) {
      if (agent.server.lastSeq < at) continue;
      const group = agent.server.clusterLog.state.groups.get(uuid);
      if (group && !group.loading && group.cleanBits.test(region)) {
        this.violations.push({ mirror: mirror.name, region, where: `replica of node ${node}` });
      }
    }
    const logFile = this.specs.get(mirror.name)?.logFile;
    if (logFile) {
      const fd = openSync(logFile, "r");
      const byte = new Uint8Array(1);
      readSync(fd, byte, 0, 1, 1024 + (region >>> 3));
      closeSync(fd);
      if ((byte[0]! >>> (region & 7)) & 1) {
        this.violations.push({ mirror: mirror.name, region, where: "on-disk log" });
      }
    }
  }

  /**
   * kill -9 of node's agent: its connections drop with nothing answered, nobody listens on
   * its socket, and the order declares it failed (as a heartbeat expiry would). A bus of
   * `busFor` with `abort()` drops its connection without a leave instead: the survivors
   * declare the node failed once its heartbeat expires.
   */
  async kill(node: number): Promise<void> {
    const agent = this.agents.get(node);
    if (!agent) return;
    this.agents.delete(node);
    agent.rearmer.stop();
    agent.waker.stop();
    await this.#relays.get(node)!.cut();
    const abortable = agent.bus as ClusterBus & { abort?: () => Promise<void> };
    if (this.options.busFor && abortable.abort) await abortable.abort().catch(() => {});
    else this.order.fail(node);
    // What is left of the dead process is released; it answers nothing any more.
    await agent.server.stop({ drainTimeoutMs: 0 }).catch(() => {});
  }

  /** Start node's agent again (a new replica from the latest snapshot) and its socket. */
  async restart(node: number): Promise<void> {
    await this.#startAgent(node);
    const relay = this.#relays.get(node)!;
    relay.target = this.agents.get(node)!.socketPath;
    await relay.listen();
  }

  /** Every node's mirror `name` suspended (I/O drained and held). */
  async suspend(name: string): Promise<void> {
    await Promise.all((this.mirrors.get(name) ?? []).map((m) => m.suspend()));
  }

  /** Every node's mirror `name` resumed: the kernels ask for resync work again. */
  async resume(name: string): Promise<void> {
    for (const mirror of this.mirrors.get(name) ?? []) await mirror.resume();
  }

  /** Every node's mirror `name` suspended and resumed: kernels ask for resync work again. */
  async suspendResume(name: string): Promise<void> {
    for (const mirror of this.mirrors.get(name) ?? []) await mirror.suspendResume();
  }

  /** Whether every region of `name` is in sync on every live replica. */
  inSync(name: string): boolean {
    const spec = this.specs.get(name)!;
    return this.servers().every((s) => {
      const group = s.clusterLog.state.groups.get(spec.uuid);
      return group !== undefined && group.syncBits.count === spec.regions;
    });
  }

  async legsIdentical(name: string): Promise<boolean> {
    const mirror = this.mirrors.get(name)![0]!;
    const first = await mirror.readLeg(0);
    for (let leg = 1; leg < mirror.options.legPaths.length; leg++) {
      const other = await mirror.readLeg(leg);
      if (Buffer.compare(Buffer.from(first), Buffer.from(other)) !== 0) return false;
    }
    return true;
  }

  async close(): Promise<void> {
    for (const host of this.hosts.values()) host.client.close();
    for (const list of this.mirrors.values()) for (const m of list) await m.stop();
    for (const relay of this.#relays.values()) await relay.cut();
    for (const agent of this.agents.values()) {
      agent.rearmer.stop();
      agent.waker.stop();
    }
    for (const agent of this.agents.values()) await agent.server.stop({ drainTimeoutMs: 200 });
    this.agents.clear();
    await rm(this.options.dir, { recursive: true, force: true });
  }
}

/** A write in flight on a mirror's legs (every node's kernel writes the same leg files). */
interface InFlightWrite {
  readonly start: number;
  readonly end: number;
  readonly done: Promise<void>;
}

/**
 * Writes in flight by leg file and region, across every WriteLoad: two writes to
 * overlapping bytes are never in flight at once. Neither dm-raid1 nor the block layer
 * orders overlapping writes in flight together: each leg may apply them in a different
 * order, so the legs would differ without anything being wrong with the log (no
 * filesystem or database issues such writes; they wait for the first to complete).
 */
const inFlightWrites = new Map<string, InFlightWrite[]>();

async function writeExclusive(
  mirror: SimMirror,
  region: number,
  offset: number,
  data: Uint8Array,
): Promise<void> {
  const key = `${mirror.options.legPaths[0]}:${region}`;
  const end = offset + data.length;
  for (;;) {
    const overlapping = inFlightWrites.get(key)?.find((w) => w.start < end && offset < w.end);
    if (!overlapping) break;
    await overlapping.done.catch(() => {});
  }
  const done = mirror.write(region, offset, data);
  const entry: InFlightWrite = { start: offset, end, done };
  const list = inFlightWrites.get(key) ?? [];
  list.push(entry);
  inFlightWrites.set(key, list);
  try {
    await done;
  } finally {
    list.splice(list.indexOf(entry), 1);
    if (list.length === 0 && inFlightWrites.get(key) === list) inFlightWrites.delete(key);
  }
}

/**
 * Random writes to a set of mirrors from `writers` concurrent writers, until stopped.
 * Writes to one region run concurrently, but never two to overlapping bytes
 * (`writeExclusive`).
 */
export class WriteLoad {
  acked = 0;
  failed = 0;
  #running = true;
  readonly #done: Promise<void>[] = [];

  constructor(
    mirrors: readonly SimMirror[],
    options: { writers: number; bytes: number; seed?: number; pauseMs?: number },
  ) {
    let state = options.seed ?? 1;
    const random = () => {
      state = (state * 1_103_515_245 + 12_345) >>> 0;
      return state / 2 ** 32;
    };
    for (let w = 0; w < options.writers; w++) {
      this.#done.push(
        (async () => {
          while (this.#running) {
            const mirror = mirrors[Math.floor(random() * mirrors.length)]!;
            const region = Math.floor(random() * mirror.regionCount);
            const offset = Math.floor(random() * (mirror.options.regionBytes - options.bytes));
            const data = new Uint8Array(options.bytes).fill(Math.floor(random() * 256));
            try {
              await writeExclusive(mirror, region, offset, data);
              this.acked++;
            } catch {
              this.failed++;
              if (!this.#running) return;
            }
            if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
            else await new Promise((r) => setImmediate(r));
          }
        })(),
      );
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#done);
  }
}
