import { describe, expect, it } from "vitest";
import { runSchedule, zeroCounts } from "../../testing/replica-simulation.ts";

// Deterministic simulation of the replicated cluster log over the in-process order:
// random fault schedules (joins, leaves, failures, held, duplicated and lost
// publications) with the invariants listed in testing/replica-simulation.ts. The default run is short;
// `MIRRORPLANE_SIM_SCHEDULES=5000 npx vitest run replica-simulation` runs more (seeds 1..5000),
// `MIRRORPLANE_SIM_SEED_BASE=<b>` shifts them to b+1..b+5000, and
// `MIRRORPLANE_SIM_SEED=<n>` replays one schedule (MIRRORPLANE_SIM_TRACE=<file> traces it).

const SCHEDULES = Number(process.env.MIRRORPLANE_SIM_SCHEDULES ?? 2000);
const SEED_BASE = Number(process.env.MIRRORPLANE_SIM_SEED_BASE ?? 0);
const ONE_SEED = process.env.MIRRORPLANE_SIM_SEED;

describe("cluster-log simulation over the in-process order", () => {
  it(`keeps every invariant over ${ONE_SEED ? "one" : SCHEDULES} random fault schedule(s)`, async () => {
    const seeds = ONE_SEED
      ? [Number(ONE_SEED)]
      : Array.from({ length: SCHEDULES }, (_, i) => SEED_BASE + i + 1);
    const total = zeroCounts();
    for (const seed of seeds) {
      const stats = await runSchedule(seed);
      for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += stats[key];
    }
    console.log(`cluster-log simulation: ${seeds.length} schedules run`, total);
    // The schedules really exercised what they claim to (a single replayed seed need not).
    if (ONE_SEED) return;
    expect(total.failures).toBeGreaterThan(0);
    expect(total.leaves).toBeGreaterThan(0);
    expect(total.duplicated).toBeGreaterThan(0);
    expect(total.held).toBeGreaterThan(0);
    expect(total.resyncHandedOut).toBeGreaterThan(0);
    expect(total.nosyncWrites).toBeGreaterThan(0);
    expect(total.rearms).toBeGreaterThan(0);
  }, 600_000);

  it("replays a seed identically", async () => {
    expect(await runSchedule(42)).toEqual(await runSchedule(42));
  });
});
