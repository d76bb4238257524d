// Issue 15: the snapshot of a large log must not stall the event loop. One server on the
// in-process order, snapshotting every 4,096 applied operations as in production, under a
// depth-1 MARK/CLEAR load on one of its logs; two sizes at the limits:
//   * one clustered-core log of 2^24 regions (the default region limit): 4 MiB of bitmaps;
//   * 1,024 logs (the default log limit) of 65,536 regions each: 16 MiB of bitmaps.
// Each is run twice, alternating: with the whole snapshot made in the turn it is started
// (`snapshotBytesPerTurn` Infinity: the old behaviour) and in the background (1 MiB of
// bitmaps a turn, the default). Prints the worst event-loop delay
// (perf_hooks.monitorEventLoopDelay), the worst MARK+CLEAR round trip (both also carry GC
// and this shared machine's preemption), the longest turn a snapshot took (its first: the
// encoding of everything but the bitmaps, or all of it in one turn; and each later step)
// and the time of one synchronous ClusterLog.snapshot().
//
//   npm run bench:snapshot -w @mirrorplane/agent     (about 30 s)
//   BENCH_OPS=40000 BENCH_ROUNDS=2 to change the load
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { pino } from "pino";
import { InProcessOrder } from "../src/clusterlog/in-process-bus.ts";
import { FileLogDevices } from "../src/clusterlog/log-devices.ts";
import { ClusterLogServer, SNAPSHOT_BYTES_PER_TURN } from "../src/clusterlog/server.ts";
import { Kernel } from "../testing/server-harness.ts";
import { TestClient } from "../testing/uapi-client.ts";

const OPS = Number(process.env.BENCH_OPS ?? 40_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

interface Shape {
  readonly label: string;
  readonly logs: number;
  readonly regions: number;
}

const SHAPES: Shape[] = [
  { label: "1 log x 2^24 regions", logs: 1, regions: 2 ** 24 },
  { label: "1,024 logs x 65,536 regions", logs: 1024, regions: 65_536 },
];

/** `bytesPerTurn` 0: no snapshots at all (what the load alone does to the loop). */
async function run(shape: Shape, bytesPerTurn: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "mp-snapshot-stall-"));
  const bus = new InProcessOrder().bus(1);
  // The bus's part of the turn that hands a snapshot over (the in-process order copied the
  // bytes before issue 15).
  const handover = { wall: 0, cpu: 0 };
  const save = bus.saveSnapshot.bind(bus);
  bus.saveSnapshot = (snapshot) => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const saved = save(snapshot);
    const c = process.cpuUsage(c0);
    handover.wall = Math.max(handover.wall, performance.now() - t0);
    handover.cpu = Math.max(handover.cpu, (c.user + c.system) / 1000);
    return saved;
  };
  const server = new ClusterLogServer({
    bus,
    devices: new FileLogDevices({ overrides: new Map() }),
    log: pino({ level: "silent" }),
    snapshotEvery: bytesPerTurn === 0 ? 0 : 4096,
    snapshotIntervalMs: 0,
    snapshotBytesPerTurn: bytesPerTurn || SNAPSHOT_BYTES_PER_TURN,
    clusterLog: { maxRegions: 2 ** 24, maxLogs: 1024 },
  });
  await server.start();
  const socket = join(dir, "s.sock");
  await server.listenUnix(socket);
  try {
    const kernel = new Kernel(await TestClient.connect(socket));
    for (let i = 0; i < shape.logs; i++) {
      kernel.uuid = `LVM-stall-${i}`.padEnd(64, "x");
      await kernel.up(`${shape.regions * 1024} clustered-core 1024 sync`);
    }
    const log = server.clusterLog;
    // How long the snapshot held the loop in one turn: its first (the encoding of
    // everything but the bitmaps, or all of it when it is made in one turn) and, in the
    // background, each later step.
    // In CPU time (process.cpuUsage: this process, all threads) as well as wall-clock: on
    // this shared machine the wall-clock time also carries other processes' turns.
    const turn = { first: 0, firstCpu: 0, later: 0, laterCpu: 0 };
    const cpuMs = (since: NodeJS.CpuUsage) => {
      const d = process.cpuUsage(since);
      return (d.user + d.system) / 1000;
    };
    const begin = log.beginSnapshot.bind(log);
    log.beginSnapshot = (options) => {
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const job = begin(options);
      const step = job.step.bind(job);
      let first = true;
      job.step = (maxBytes) => {
        const s0 = first ? t0 : performance.now();
        const sc = first ? c0 : process.cpuUsage();
        const done = step(maxBytes);
        const took = performance.now() - s0;
        const cpu = cpuMs(sc);
        if (first) {
          turn.first = Math.max(turn.first, took);
          turn.firstCpu = Math.max(turn.firstCpu, cpu);
        } else {
          turn.later = Math.max(turn.later, took);
          turn.laterCpu = Math.max(turn.laterCpu, cpu);
        }
        first = false;
        return done;
      };
      return job;
    };
    const t0 = performance.now();
    const bytes = log.snapshot();
    const snapshotMs = performance.now() - t0;
    const saved = server.stats.snapshots;
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const start = performance.now();
    let worstRoundTrip = 0;
    for (let i = 0; i < OPS; i += 2) {
      const region = (i * 7919) % shape.regions;
      const a = performance.now();
      await kernel.mark([region]);
      await kernel.clear([region]);
      worstRoundTrip = Math.max(worstRoundTrip, performance.now() - a);
    }
    const elapsed = performance.now() - start;
    h.disable();
    kernel.client.destroy();
    return (
      `snapshot ${(bytes.length / 2 ** 20).toFixed(1)} MiB, one synchronous snapshot() ${snapshotMs.toFixed(1)} ms; ` +
      `${OPS} ops in ${(elapsed / 1000).toFixed(1)} s, ${server.stats.snapshots - saved} snapshots; ` +
      `event-loop delay max ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms; ` +
      `worst MARK+CLEAR ${worstRoundTrip.toFixed(1)} ms; a snapshot's longest turn: first ${turn.first.toFixed(1)} ms (CPU ${turn.firstCpu.toFixed(1)} ms), later ${turn.later.toFixed(1)} ms (CPU ${turn.laterCpu.toFixed(1)} ms); bus handover ${handover.wall.toFixed(1)} ms (CPU ${handover.cpu.toFixed(1)} ms)`
    );
  } finally {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(
  `snapshot stall (issue 15): a snapshot every 4,096 operations, ${OPS} MARK/CLEAR at depth 1`,
);
for (const shape of SHAPES) {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [mode, perTurn] of [
      ["no snapshots", 0],
      ["in one turn (before)", Number.POSITIVE_INFINITY],
      [`background, ${SNAPSHOT_BYTES_PER_TURN / 2 ** 20} MiB/turn`, SNAPSHOT_BYTES_PER_TURN],
    ] as const) {
      console.log(`${shape.label}, ${mode}: ${await run(shape, perTurn)}`);
    }
  }
}
