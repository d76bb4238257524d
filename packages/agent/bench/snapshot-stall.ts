// Issue 15: the snapshot of a large log must not stall the event loop. One server on the
// in-process order with a clustered-core log of BENCH_REGIONS regions (default 2^24, the
// default limit), resync out of sync, under a steady MARK/CLEAR load; a snapshot every
// 4,096 operations as in production. Prints the worst event-loop delay
// (perf_hooks.monitorEventLoopDelay) and the time of one ClusterLog.snapshot().
//
//   npx tsx bench/snapshot-stall.ts          (about 10 s)
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { pino } from "pino";
import { startClusterLogCommand } from "../src/clusterlog/command.ts";
import { TestClient } from "../src/clusterlog/test-client.ts";
import { Kernel } from "../src/clusterlog/test-harness.ts";

const REGIONS = Number(process.env.BENCH_REGIONS ?? 2 ** 24);
const OPS = Number(process.env.BENCH_OPS ?? 40_000);

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "mp-snapshot-stall-"));
  const running = await startClusterLogCommand(
    {
      socket: join(dir, "s.sock"),
      dataDir: join(dir, "data"),
      connector: "off",
      rearm: "off",
      maxRegions: Math.max(REGIONS, 2 ** 24),
    },
    pino({ level: "silent" }),
  );
  try {
    const kernel = new Kernel(await TestClient.connect(join(dir, "s.sock")));
    await kernel.up(`${REGIONS * 1024} clustered-core 1024 sync`);
    const t0 = performance.now();
    const bytes = running.server.clusterLog.snapshot();
    const snapshotMs = performance.now() - t0;
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    const start = performance.now();
    let worstRoundTrip = 0;
    for (let i = 0; i < OPS; i += 2) {
      const region = (i * 7919) % REGIONS;
      const a = performance.now();
      await kernel.mark([region]);
      await kernel.clear([region]);
      worstRoundTrip = Math.max(worstRoundTrip, performance.now() - a);
    }
    const elapsed = performance.now() - start;
    h.disable();
    console.log(
      `snapshot stall: ${REGIONS} regions, snapshot ${(bytes.length / 2 ** 20).toFixed(1)} MiB in ${snapshotMs.toFixed(1)} ms; ` +
        `${OPS} ops in ${(elapsed / 1000).toFixed(1)} s, ${running.server.stats.snapshots} snapshots; ` +
        `event-loop delay max ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(2)} ms; ` +
        `worst MARK+CLEAR ${worstRoundTrip.toFixed(1)} ms`,
    );
    kernel.client.destroy();
  } finally {
    await running.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
