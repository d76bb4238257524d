// Load through the mirror simulator (issue 5): simulated kernels writing mirrors through
// three agents over their sockets, exactly the path a real host takes (a write marks its
// region with an integrated FLUSH, lands on both legs, clears lazily), against the same
// writes issued straight to the two leg files (no log at all) in the same run. Then a
// failover under that load: node 2's agent killed -9 — how long until the survivors have
// resynced its regions (with the hint guard re-arming their kernels), and whether the legs
// end byte-identical.
//
//   npx tsx packages/agent/bench/simulator.ts            (about 40 s; JetStream if installed)
//   BENCH_SECONDS=5 BENCH_WRITERS=8 npx tsx packages/agent/bench/simulator.ts
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimCluster, WriteLoad } from "@mirrorplane/simulator";
import { NatsServer, natsServerBinary } from "@mirrorplane/simulator/nats-server";
import { createClusterBusFromOptions } from "../src/clusterlog/create-cluster-bus.ts";
import { ephemeralClusterKeys } from "../src/clusterlog/member-keys.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const WRITERS = Number(process.env.BENCH_WRITERS ?? 8);
const BYTES = 4096;
const REGIONS = 1024;
const REGION_BYTES = 64 * 1024;

/** The baseline: every write to both leg files, WRITERS at a time, no log. */
async function rawLegs(dir: string): Promise<number> {
  const legs = await Promise.all(
    [0, 1].map(async (i) => {
      const handle = await open(join(dir, `raw-leg${i}.img`), "w+");
      await handle.truncate(REGIONS * REGION_BYTES);
      return handle;
    }),
  );
  let writes = 0;
  let state = 7;
  const random = () => {
    state = (state * 1_103_515_245 + 12_345) >>> 0;
    return state / 2 ** 32;
  };
  const deadline = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      while (performance.now() < deadline) {
        const region = Math.floor(random() * REGIONS);
        const offset = region * REGION_BYTES + Math.floor(random() * (REGION_BYTES - BYTES));
        const data = new Uint8Array(BYTES).fill(Math.floor(random() * 256));
        await Promise.all(legs.map((leg) => leg.write(data, 0, BYTES, offset)));
        writes++;
        await new Promise((r) => setImmediate(r));
      }
    }),
  );
  for (const leg of legs) await leg.close();
  return writes / SECONDS;
}

async function throughCluster(
  dir: string,
  nats: NatsServer | null,
  label: string,
): Promise<{ writesPerSecond: number; perWrite: string; failover: string }> {
  const name = `bench-${process.pid}-${label}`;
  const keys = ephemeralClusterKeys([1, 2, 3]);
  const cluster = await SimCluster.start({
    dir: join(dir, label),
    nodes: 3,
    ...(nats
      ? {
          busFor: (node: number) =>
            createClusterBusFromOptions({
              nodeId: node,
              natsUrl: nats.url,
              cluster: name,
              failureTimeoutMs: 2_000,
              memberKeys: keys.get(node)!,
            }),
        }
      : {}),
  });
  try {
    await cluster.addMirror({
      name: "m",
      regions: REGIONS,
      regionBytes: REGION_BYTES,
      sync: "nosync",
      integratedFlush: true,
    });
    const mirrors = cluster.mirrors.get("m")!;
    // Node 2's kernel has writers of its own, stopped before its agent is killed (a kernel
    // whose agent died must be fenced, docs/KERNEL-BRIDGE.md finding 4).
    const share = Math.max(1, Math.round(WRITERS / 3));
    const load = new WriteLoad([mirrors[0]!, mirrors[2]!], {
      writers: WRITERS - share,
      bytes: BYTES,
    });
    const node2 = new WriteLoad([mirrors[1]!], { writers: share, bytes: BYTES, seed: 5 });
    const acked = () => load.acked + node2.acked;
    await new Promise((r) => setTimeout(r, 500)); // warm-up
    const acked0 = acked();
    const stats0 = mirrors.map((m) => ({ ...m.stats }));
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const writes = acked() - acked0;
    const sum = (key: "flushes" | "marks" | "clears" | "remoteQueries") =>
      mirrors.reduce((n, m, i) => n + m.stats[key] - stats0[i]![key], 0);
    const perWrite =
      `FLUSH ${(sum("flushes") / writes).toFixed(2)}, MARK ${(sum("marks") / writes).toFixed(2)}, ` +
      `CLEAR ${(sum("clears") / writes).toFixed(2)}, IS_REMOTE_RECOVERING ${(sum("remoteQueries") / writes).toFixed(2)} per write`;

    // Failover under load: node 2's agent dies with regions marked; the survivors resync
    // them. Node 2's own writers stop first (its kernel is fenced in a real deployment).
    await node2.stop();
    const killedAt = performance.now();
    await cluster.kill(2);
    const outOfSync = () => {
      const group = cluster.servers()[0]?.clusterLog.state.groups.get("LVM-sim-m");
      return group ? group.regionCount - group.syncBits.count : -1;
    };
    let declared = 0;
    let worst = 0;
    for (let i = 0; i < 6000; i++) {
      const missing = outOfSync();
      worst = Math.max(worst, missing);
      if (missing > 0 && !declared) declared = performance.now();
      if (declared && missing === 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    const resyncedAt = performance.now();
    await load.stop();
    await cluster.restart(2);
    const identical = await cluster.legsIdentical("m");
    const failover = declared
      ? `failure declared after ${((declared - killedAt) / 1000).toFixed(2)} s, ` +
        `${worst} region(s) out of sync, all back in sync ${((resyncedAt - declared) / 1000).toFixed(2)} s later; ` +
        `legs identical: ${identical}`
      : `no region went out of sync (node 2 held no marks); legs identical: ${identical}`;
    return { writesPerSecond: writes / SECONDS, perWrite, failover };
  } finally {
    await cluster.close();
  }
}

const dir = await mkdtemp(join(tmpdir(), "mp-bench-sim-"));
try {
  console.log(
    `mirror simulator load: ${WRITERS} writers, ${BYTES}-byte writes, ${REGIONS} regions of ${REGION_BYTES / 1024} KiB, ${SECONDS} s each`,
  );
  const raw = await rawLegs(dir);
  console.log(`  baseline, both leg files written directly: ${raw.toFixed(0)} writes/s`);
  const inProcess = await throughCluster(dir, null, "inproc");
  console.log(
    `  3 agents, in-process order:  ${inProcess.writesPerSecond.toFixed(0)} writes/s (${((100 * inProcess.writesPerSecond) / raw).toFixed(0)} % of baseline); ${inProcess.perWrite}`,
  );
  console.log(`    failover: ${inProcess.failover}`);
  if (natsServerBinary()) {
    const nats = await NatsServer.start();
    try {
      const js = await throughCluster(dir, nats, "jetstream");
      console.log(
        `  3 agents, NATS JetStream:    ${js.writesPerSecond.toFixed(0)} writes/s (${((100 * js.writesPerSecond) / raw).toFixed(0)} % of baseline); ${js.perWrite}`,
      );
      console.log(`    failover: ${js.failover}`);
    } finally {
      await nats.stop();
    }
  } else {
    console.log("  (nats-server not installed: no JetStream figure)");
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
