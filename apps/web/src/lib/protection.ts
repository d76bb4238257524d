import type { TResyncProgress } from "@mirrorplane/contracts";
import { formatBytes } from "./bytes";
import { formatDuration } from "./eta";

// What a mirror loses while regions are out of sync, and what an operator's action changes
// about it: the numbers the confirmations, the mirror page and the overview say. Pure and
// isomorphic (the router and the browser both use it).

/** The fields of an agent's resync progress these helpers read. */
export type TResyncShape = Pick<
  TResyncProgress,
  "state" | "total" | "inSync" | "rate" | "etaSeconds" | "throttle"
>;

export type TResyncDisplayState =
  | "running"
  | "throttled"
  | "paused"
  | "done"
  | "cancelled"
  | "failed";

/**
 * A running resync under a throttle is "throttled", never "paused": the agent limits the
 * sweep with a replicated per-second allowance (resync-control.ts), which is how a throttle
 * works, not a stop. Only a pause without a throttle reads "paused".
 */
export function resyncDisplayState(p: TResyncShape): TResyncDisplayState {
  if ((p.state === "running" || p.state === "paused") && p.throttle !== null) return "throttled";
  return p.state;
}

export function resyncStateLabel(p: TResyncShape): string {
  const s = resyncDisplayState(p);
  if (s === "throttled") return `throttled, ${formatRate(p.throttle!)}`;
  return s;
}

export function formatRate(regionsPerSecond: number): string {
  const r = Number(regionsPerSecond.toFixed(regionsPerSecond < 10 ? 1 : 0));
  return `${r.toLocaleString("en-US")} region${r === 1 ? "" : "s"}/s`;
}

/**
 * Seconds left: at the measured rate, capped by the throttle (a throttled sweep cannot go
 * faster than its limit, and before a rate is measured the limit is the best estimate).
 */
export function resyncEtaSeconds(p: TResyncShape): number | null {
  if (p.state !== "running" && p.state !== "paused") return null;
  const remaining = Math.max(0, p.total - p.inSync);
  if (p.throttle !== null) {
    const rate = p.rate !== null && p.rate > 0 ? Math.min(p.rate, p.throttle) : p.throttle;
    return remaining / rate;
  }
  if (p.state === "paused") return null;
  return p.etaSeconds;
}

export interface TExposure {
  /** Regions without redundancy (out of sync). */
  regions: number;
  bytes: number | null;
}

export function exposure(regions: number, regionBytes: number | null): TExposure {
  return { regions, bytes: regionBytes === null ? null : regions * regionBytes };
}

export function formatExposure(e: TExposure): string {
  const r = `${e.regions.toLocaleString("en-US")} region${e.regions === 1 ? "" : "s"}`;
  return e.bytes === null ? r : `${r} (${formatBytes(e.bytes)})`;
}

/**
 * What a cancel leaves: nothing is declared in sync by a cancel (the agent's cancel), so
 * every region out of sync now stays out of sync — without redundancy — until another
 * resync copies it (or a write to it is mirrored).
 */
export function describeCancel(input: {
  regionCount: number;
  inSync: number;
  regionBytes: number | null;
  progress: TResyncShape;
}): { stays: TExposure; wouldFinishInSeconds: number | null; sentence: string } {
  const stays = exposure(Math.max(0, input.regionCount - input.inSync), input.regionBytes);
  const eta = resyncEtaSeconds(input.progress);
  const sentence =
    stays.regions === 0
      ? "Every region is in sync: cancelling loses no redundancy."
      : `Cancelling leaves ${formatExposure(stays)} without redundancy: nothing recovers them until you start another resync.${
          eta === null
            ? ""
            : ` Left running, this resync would finish in about ${formatDuration(eta)}.`
        }`;
  return { stays, wouldFinishInSeconds: eta, sentence };
}

/** Regions per bucket state byte: anything but 0 (in sync) is out of sync. */
export interface TOutOfSyncSpan {
  first: number;
  last: number;
  /** Out-of-sync regions in the map (an upper bound when a bucket holds several regions). */
  regions: number;
  /** One bucket per region: `regions` and the span are exact. */
  exact: boolean;
}

/** The smallest range holding every out-of-sync region of a region map, or null if none. */
export function outOfSyncSpan(
  states: Uint8Array,
  regionsPerBucket: number,
  regionCount: number,
): TOutOfSyncSpan | null {
  let firstBucket = -1;
  let lastBucket = -1;
  let regions = 0;
  for (let b = 0; b < states.length; b++) {
    if ((states[b]! & 3) === 0) continue;
    if (firstBucket < 0) firstBucket = b;
    lastBucket = b;
    regions += Math.max(0, Math.min(regionsPerBucket, regionCount - b * regionsPerBucket));
  }
  if (firstBucket < 0) return null;
  return {
    first: firstBucket * regionsPerBucket,
    last: Math.min(regionCount - 1, (lastBucket + 1) * regionsPerBucket - 1),
    regions,
    exact: regionsPerBucket === 1,
  };
}

/** Out-of-sync regions outside [first, last] (upper bound when buckets hold several). */
export function outOfSyncOutside(
  states: Uint8Array,
  regionsPerBucket: number,
  regionCount: number,
  first: number,
  last: number,
): number {
  let n = 0;
  for (let b = 0; b < states.length; b++) {
    if ((states[b]! & 3) === 0) continue;
    const lo = b * regionsPerBucket;
    const hi = Math.min(regionCount - 1, lo + regionsPerBucket - 1);
    const below = Math.max(0, Math.min(hi, first - 1) - lo + 1);
    const above = Math.max(0, hi - Math.max(lo, last + 1) + 1);
    n += below + above;
  }
  return n;
}
