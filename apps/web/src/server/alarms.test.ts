import { describe, expect, it } from "vitest";
import {
  assessMirror,
  defaultAlarmConfig,
  etaSlip,
  projectionAt,
  rollUpAlarms,
  type TAlarm,
  type TSyncPoint,
} from "./alarms";

const t0 = Date.UTC(2026, 5, 1, 12, 0, 0);
const every = 15_000;
const regionCount = 100_000;

/** Observations every 15 s; `gainAt(k)` regions gained in the k-th interval. */
function observe(n: number, gainAt: (k: number) => number, inSync0 = 10_000): TSyncPoint[] {
  const points: TSyncPoint[] = [{ at: t0, inSync: inSync0, regionCount }];
  for (let k = 1; k < n; k++) {
    const prev = points[k - 1]!;
    points.push({
      at: t0 + k * every,
      inSync: Math.min(regionCount, prev.inSync + gainAt(k)),
      regionCount,
    });
  }
  return points;
}

const assess = (
  history: TSyncPoint[],
  trend: "recovering" | "stalled" | "unknown" | "in-sync",
  outOfSyncSince: number | null,
) => {
  const newest = history.at(-1)!;
  return assessMirror({
    uuid: "LVM-m",
    trend,
    inSync: newest.inSync,
    regionCount: newest.regionCount,
    history,
    outOfSyncSince,
    now: newest.at,
  });
};

describe("ETA projection", () => {
  it("projects the finish from the rate over the trailing window", () => {
    // 150 regions per 15 s = 10 regions/s.
    const h = observe(10, () => 150);
    const p = projectionAt(h, 9)!;
    expect(p.rate).toBe(10);
    const newest = h[9]!;
    expect(p.finishAt).toBe(newest.at + ((regionCount - newest.inSync) / 10) * 1000);
  });

  it("has no projection without a span of at least rateMinSpanMs, or without any gain", () => {
    expect(
      projectionAt(
        observe(1, () => 150),
        0,
      ),
    ).toBeNull();
    expect(
      projectionAt(
        observe(5, () => 0),
        4,
      ),
    ).toBeNull();
  });

  it("has no projection for a mirror in sync", () => {
    const h: TSyncPoint[] = [
      { at: t0, inSync: 90, regionCount: 100 },
      { at: t0 + 30_000, inSync: 100, regionCount: 100 },
    ];
    expect(projectionAt(h, 1)).toBeNull();
  });
});

describe("slipping ETA", () => {
  it("a steady rate does not slip", () => {
    const h = observe(41, () => 150);
    const slip = etaSlip(h, h.at(-1)!.at)!;
    expect(slip.slipping).toBe(false);
    expect(Math.abs(slip.growthMs)).toBeLessThan(1_000);
  });

  it("a rate that keeps falling slips: the finish moves later by more than the tolerance and stays there", () => {
    // The gain per interval halves over ten minutes: 150 → ~75 regions per 15 s.
    const h = observe(41, (k) => Math.round(150 / (1 + k / 40)));
    const slip = etaSlip(h, h.at(-1)!.at)!;
    expect(slip.slipping).toBe(true);
    expect(slip.growthMs).toBeGreaterThan(slip.toleranceMs);
    // Tolerance: a quarter of the time that was left at the start of the window.
    expect(slip.toleranceMs).toBeGreaterThan(defaultAlarmConfig.slipMinMs);
  });

  it("more work appearing (regions going out of sync again) slips too", () => {
    // Steady gain, but every interval after the fifth loses some of it to new writes.
    const h = observe(41, (k) => (k > 5 ? 150 - Math.min(120, (k - 5) * 6) : 150));
    expect(etaSlip(h, h.at(-1)!.at)!.slipping).toBe(true);
  });

  it("one slow interval does not alarm: it weighs on the rate for one rate window only", () => {
    const steady = (k: number) => (k === 33 ? 0 : 150);
    // 33 is 7 intervals (105 s) before the newest: still inside the confirmation period,
    // whose earliest projections it slowed.
    const h = observe(41, steady);
    expect(etaSlip(h, h.at(-1)!.at)!.slipping).toBe(false);
    // Near the end it moves the newest three projections (by more than the tolerance), but
    // not the whole confirmation period.
    const late = observe(41, (k) => (k === 38 ? 0 : 150));
    const newest3 = [38, 39, 40].map((i) => projectionAt(late, i)!.finishAt);
    const before = projectionAt(late, 37)!.finishAt;
    expect(Math.min(...newest3) - before).toBeGreaterThan(
      etaSlip(late, late.at(-1)!.at)!.toleranceMs,
    );
    expect(etaSlip(late, late.at(-1)!.at)!.slipping).toBe(false);
  });

  it("says nothing without enough evidence: too few projections, too short a span, or no gain now", () => {
    const short = observe(8, (k) => Math.round(150 / (1 + k)));
    expect(etaSlip(short, short.at(-1)!.at)).toBeNull(); // 105 s < slipMinSpanMs
    const stopped = observe(41, (k) => (k > 35 ? 0 : 150));
    expect(etaSlip(stopped, stopped.at(-1)!.at)).toBeNull();
  });

  it("a drop in regions in sync (a new resync) starts a new phase: no false slip, the rate restarts", () => {
    // A sync about to finish, then a resync clears a third of the mirror and runs at the
    // same rate: the new finish is much later, but nothing slipped.
    const h = observe(41, (k) => (k === 20 ? -30_000 : 150));
    expect(etaSlip(h, h.at(-1)!.at)!.slipping).toBe(false);
    // The rate right after the drop is measured from the drop on, not across it.
    const p = projectionAt(h, 22)!;
    expect(p.rate).toBe(10);
  });

  it("only looks at the last slipWindowMs", () => {
    // Slipped long ago, steady for the last ten minutes: not slipping now.
    const h = observe(121, (k) => (k < 60 ? Math.round(300 / (1 + k / 10)) : 60));
    expect(etaSlip(h, h.at(-1)!.at)!.slipping).toBe(false);
  });
});

describe("mirror alarms (complaint 12: no alert noise)", () => {
  it("a recovering mirror on track raises nothing, however long it has been without redundancy", () => {
    const h = observe(41, () => 150);
    const a = assess(h, "recovering", t0 - 6 * 3_600_000);
    expect(a.alarms).toEqual([]);
    expect(a.onTrack).toBe(true);
    expect(a.withoutRedundancyMs).toBe(h.at(-1)!.at - (t0 - 6 * 3_600_000));
    expect(a.projectedFinishAt).not.toBeNull();
  });

  it("a mirror in sync raises nothing and is not 'on track' (nothing to recover)", () => {
    const h: TSyncPoint[] = [{ at: t0, inSync: 100, regionCount: 100 }];
    expect(assess(h, "in-sync", null)).toMatchObject({
      alarms: [],
      onTrack: false,
      withoutRedundancyMs: null,
    });
  });

  it("a first look (unknown trend) raises nothing, even long out of sync", () => {
    const h = observe(1, () => 0);
    expect(assess(h, "unknown", t0 - 3_600_000).alarms).toEqual([]);
  });

  it("a stall alarms; past the limit without redundancy it is critical too", () => {
    const h = observe(41, (k) => (k > 30 ? 0 : 150));
    const recent = assess(h, "stalled", h.at(-1)!.at - 5 * 60_000);
    expect(recent.alarms.map((a) => [a.kind, a.severity])).toEqual([["stalled", "warning"]]);
    const long = assess(h, "stalled", h.at(-1)!.at - 45 * 60_000);
    expect(long.alarms.map((a) => [a.kind, a.severity])).toEqual([
      ["stalled", "warning"],
      ["without-redundancy", "critical"],
    ]);
    expect(long.alarms[1]!.message).toMatch(/without redundancy for 45 min \(limit 30 min\)/);
    expect(long.alarms[1]!.since).toBe(h.at(-1)!.at - 45 * 60_000);
  });

  it("a slipping ETA alarms while regions are still gained; not on track, so the exposure counts", () => {
    const h = observe(41, (k) => Math.round(150 / (1 + k / 40)));
    const a = assess(h, "recovering", h.at(-1)!.at - 31 * 60_000);
    expect(a.onTrack).toBe(false);
    expect(a.alarms.map((x) => x.kind)).toEqual(["eta-slipping", "without-redundancy"]);
    expect(a.alarms[0]!.message).toMatch(/projected finish moved .* later/);
    // Below the limit: only the slip.
    const b = assess(h, "recovering", h.at(-1)!.at - 10 * 60_000);
    expect(b.alarms.map((x) => x.kind)).toEqual(["eta-slipping"]);
  });

  it("without a known start, the exposure rule cannot fire", () => {
    const h = observe(41, (k) => (k > 30 ? 0 : 150));
    expect(assess(h, "stalled", null).alarms.map((a) => a.kind)).toEqual(["stalled"]);
  });

  it("the threshold is configurable", () => {
    const h = observe(41, (k) => (k > 30 ? 0 : 150));
    const newest = h.at(-1)!;
    const a = assessMirror(
      {
        uuid: "m",
        trend: "stalled",
        inSync: newest.inSync,
        regionCount,
        history: h,
        outOfSyncSince: newest.at - 5 * 60_000,
        now: newest.at,
      },
      { ...defaultAlarmConfig, withoutRedundancyMs: 60_000 },
    );
    expect(a.alarms.map((x) => x.kind)).toContain("without-redundancy");
  });
});

describe("roll-up", () => {
  it("orders worst first: critical, then by kind, then the longest-standing, then by mirror", () => {
    const alarm = (
      mirror: string,
      kind: TAlarm["kind"],
      severity: TAlarm["severity"],
      since: number | null,
    ): TAlarm => ({ mirror, kind, severity, since, message: "" });
    const rolled = rollUpAlarms([
      alarm("b", "eta-slipping", "warning", 5),
      alarm("a", "stalled", "warning", null),
      alarm("c", "without-redundancy", "critical", 10),
      alarm("a", "without-redundancy", "critical", 3),
      alarm("a", "eta-slipping", "warning", 2),
    ]);
    expect(rolled.map((a) => `${a.severity}/${a.kind}/${a.mirror}`)).toEqual([
      "critical/without-redundancy/a",
      "critical/without-redundancy/c",
      "warning/stalled/a",
      "warning/eta-slipping/a",
      "warning/eta-slipping/b",
    ]);
  });
});

describe("recovery stopped (a cancelled or failed resync, issue 13)", () => {
  it("is critical at once, names what is unprotected, and shows no projected finish", () => {
    // Gaining until a moment ago (the trend still says recovering), then cancelled.
    const h = observe(41, () => 150);
    const newest = h.at(-1)!;
    const a = assessMirror({
      uuid: "LVM-m",
      trend: "recovering",
      inSync: newest.inSync,
      regionCount: newest.regionCount,
      history: h,
      outOfSyncSince: newest.at - 20_000,
      now: newest.at,
      recoveryStopped: { reason: "cancelled", resyncId: "r-1", at: newest.at - 5_000 },
      regionBytes: 4096,
    });
    expect(a.alarms.map((x) => [x.kind, x.severity])).toEqual([["without-redundancy", "critical"]]);
    const left = newest.regionCount - newest.inSync;
    expect(a.alarms[0]!.message).toContain(
      `resync r-1 cancelled: ${left.toLocaleString("en-US")} regions (`,
    );
    expect(a.alarms[0]!.message).toContain("nothing recovers them");
    expect(a.onTrack).toBe(false);
    expect(a.projectedFinishAt).toBeNull();
  });

  it("gains long after the stop are someone else's recovery: no stop alarm", () => {
    const h = observe(41, () => 150);
    const newest = h.at(-1)!;
    const a = assessMirror({
      uuid: "LVM-m",
      trend: "recovering",
      inSync: newest.inSync,
      regionCount: newest.regionCount,
      history: h,
      outOfSyncSince: null,
      now: newest.at,
      recoveryStopped: { reason: "cancelled", resyncId: "r-1", at: newest.at - 10 * 60_000 },
    });
    expect(a.alarms).toEqual([]);
    expect(a.onTrack).toBe(true);
  });

  it("a stalled mirror shows no projected finish", () => {
    const h = observe(41, (k) => (k > 30 ? 0 : 150));
    expect(assess(h, "stalled", null).projectedFinishAt).toBeNull();
  });
});
