/**
 * Progress-aware alarms (DASHBOARD.md edge 5, complaint 12). Pure: the caller passes a
 * mirror's recent sync observations, its trend (`observeTrend` in domain/sync-observer.ts) and
 * since when it has been out of sync; these functions say which alarms hold, and why.
 *
 * The rules, precisely:
 *
 * - **stalled** (warning): the trend is "stalled" — out of sync and no region gained for
 *   `stallMs` (domain/sync-observer.ts).
 *
 * - **eta-slipping** (warning): the projected finish time keeps moving later while regions
 *   are still being gained. Each observation i gets a projection
 *   `finish_i = t_i + remaining_i / rate_i`, with `rate_i` the regions gained per second
 *   between observation i and the oldest observation at most `rateWindowMs` before it
 *   (at least `rateMinSpanMs` apart; no projection when nothing was gained). A drop in
 *   regions in sync (a new resync, a failure) starts a new phase: rates and the slip
 *   rule look only at the current phase, so one sync ending and the next starting never
 *   reads as a slip. Over the current phase's projections of the last `slipWindowMs`,
 *   with at least `slipMinProjections` of them
 *   spanning at least `slipMinSpanMs`, the ETA is slipping when every projection of the
 *   last `slipConfirmMs` (at least `slipConfirm` of them, the newest observation's
 *   included) lies more than `tolerance = max(slipMinMs, slipFraction × (finish_first −
 *   t_first))` after the first one's: the finish moved later by more than a quarter of the
 *   time that was left (the ±25 % the dashboard's ETA range already allows, lib/eta.ts),
 *   and stayed there. `slipConfirmMs` is longer than `rateWindowMs`, so a hiccup (one slow
 *   interval, which weighs on every rate whose window holds it) never alarms on its own;
 *   a stalled mirror is the stall alarm, not this one.
 *
 * - **without-redundancy** (critical): out of sync for at least `withoutRedundancyMs` and
 *   not on track. "On track" means recovering (regions gained within the stall window)
 *   with an ETA that is not slipping. A recovering mirror on track never alarms, however
 *   long its rebuild takes — its time without redundancy is shown, not alarmed
 *   (complaint 12: no alarm for a routine rebuild); the moment it stalls or slips, the
 *   exposure so far makes it critical. An "unknown" trend (a first look) raises nothing.
 *   And at once, whatever the trend, when recovery was stopped: the mirror's last resync
 *   was cancelled or failed and regions are still out of sync (a cancel declares nothing
 *   in sync and stops the sweep, so nothing recovers them). That is redundancy lost, not a
 *   stall: critical, with no projected finish beside it.
 *
 * A projected finish is reported only for a mirror on track: a stalled, slipping or
 * stopped mirror never shows an "in sync at" that its alarm contradicts.
 */
import { formatBytes } from "~/lib/bytes";
import { formatDuration } from "~/lib/eta";
import type { TMirrorTrend } from "./domain/sync-observer";

export interface TSyncPoint {
  /** ms since the epoch */
  at: number;
  inSync: number;
  regionCount: number;
}

export interface TProjection {
  at: number;
  /** When the mirror would be in sync at the rate measured up to `at` (ms since epoch). */
  finishAt: number;
  /** regions per second */
  rate: number;
}

export interface TAlarmConfig {
  /** Out of sync (and not on track) for this long raises "without redundancy". */
  withoutRedundancyMs: number;
  rateWindowMs: number;
  rateMinSpanMs: number;
  slipWindowMs: number;
  slipMinProjections: number;
  slipMinSpanMs: number;
  slipFraction: number;
  slipMinMs: number;
  slipConfirmMs: number;
  slipConfirm: number;
}

export const defaultAlarmConfig: TAlarmConfig = {
  withoutRedundancyMs: 30 * 60_000,
  rateWindowMs: 60_000,
  rateMinSpanMs: 10_000,
  slipWindowMs: 10 * 60_000,
  slipMinProjections: 4,
  slipMinSpanMs: 3 * 60_000,
  slipFraction: 0.25,
  slipMinMs: 60_000,
  slipConfirmMs: 2 * 60_000,
  slipConfirm: 3,
};

/** Gains within this long of a stop are the stop's last in-flight copies (domain/sync-observer.ts stallMs). */
const stallMsForStop = 60_000;

export type TAlarmKind = "stalled" | "eta-slipping" | "without-redundancy";
export type TAlarmSeverity = "critical" | "warning";

export interface TAlarm {
  kind: TAlarmKind;
  severity: TAlarmSeverity;
  mirror: string;
  /** Since when the condition holds, where known (ms since epoch). */
  since: number | null;
  message: string;
}

const severityRank: Record<TAlarmSeverity, number> = { critical: 0, warning: 1 };
const kindRank: Record<TAlarmKind, number> = {
  "without-redundancy": 0,
  stalled: 1,
  "eta-slipping": 2,
};

/**
 * Regions in sync went down (a new resync cleared its range, or a failure) or the mirror
 * changed size: new work, a new phase. Rates and ETA trends never reach across one, or
 * the end of one sync and the start of the next would read as a slipping ETA.
 */
function phaseBreak(before: TSyncPoint, after: TSyncPoint): boolean {
  return after.inSync < before.inSync || after.regionCount !== before.regionCount;
}

/** The projection at observation `i` of `history` (oldest first), or null. */
export function projectionAt(
  history: readonly TSyncPoint[],
  i: number,
  config: TAlarmConfig = defaultAlarmConfig,
): TProjection | null {
  const p = history[i];
  if (!p || p.inSync >= p.regionCount) return null;
  let j = i;
  while (
    j > 0 &&
    p.at - history[j - 1]!.at <= config.rateWindowMs &&
    !phaseBreak(history[j - 1]!, history[j]!)
  )
    j--;
  const base = history[j]!;
  const spanMs = p.at - base.at;
  if (spanMs < config.rateMinSpanMs) return null;
  const rate = (p.inSync - base.inSync) / (spanMs / 1000);
  if (rate <= 0) return null;
  return { at: p.at, finishAt: p.at + ((p.regionCount - p.inSync) / rate) * 1000, rate };
}

export interface TSlip {
  slipping: boolean;
  /** Projected finish at the start and at the end of the window (ms since epoch). */
  fromFinishAt: number;
  toFinishAt: number;
  growthMs: number;
  toleranceMs: number;
  projections: number;
  spanMs: number;
}

/**
 * Whether the projected finish is slipping (see the module comment), or null when there
 * is not enough evidence either way (too few projections, too short a span, or the
 * newest observation has no projection because nothing was gained).
 */
export function etaSlip(
  history: readonly TSyncPoint[],
  now: number,
  config: TAlarmConfig = defaultAlarmConfig,
): TSlip | null {
  let phaseStart = 0;
  for (let i = 1; i < history.length; i++)
    if (phaseBreak(history[i - 1]!, history[i]!)) phaseStart = i;
  const projections: TProjection[] = [];
  for (let i = phaseStart; i < history.length; i++) {
    if (history[i]!.at < now - config.slipWindowMs) continue;
    const p = projectionAt(history, i, config);
    if (p) projections.push(p);
  }
  const newest = history.at(-1);
  const last = projections.at(-1);
  if (!newest || !last || last.at !== newest.at) return null;
  const first = projections[0]!;
  const spanMs = last.at - first.at;
  if (projections.length < config.slipMinProjections || spanMs < config.slipMinSpanMs) return null;
  const toleranceMs = Math.max(config.slipMinMs, config.slipFraction * (first.finishAt - first.at));
  const confirm = projections.filter((p) => p.at >= last.at - config.slipConfirmMs);
  return {
    slipping:
      confirm.length >= config.slipConfirm &&
      confirm.every((p) => p.finishAt - first.finishAt > toleranceMs),
    fromFinishAt: first.finishAt,
    toFinishAt: last.finishAt,
    growthMs: last.finishAt - first.finishAt,
    toleranceMs,
    projections: projections.length,
    spanMs,
  };
}

export interface TMirrorAssessment {
  alarms: TAlarm[];
  /** Recovering, and the ETA not slipping (never true for a mirror in sync). */
  onTrack: boolean;
  /** The newest projection's finish time, where there is one. */
  projectedFinishAt: number | null;
  /** How long the mirror has been out of sync, where known. */
  withoutRedundancyMs: number | null;
  slip: TSlip | null;
}

export function assessMirror(
  input: {
    uuid: string;
    trend: TMirrorTrend;
    inSync: number;
    regionCount: number;
    /** Observations, oldest first (the newest is the current state). */
    history: readonly TSyncPoint[];
    /** Since when it has been out of sync (ms since epoch), where known. */
    outOfSyncSince: number | null;
    now: number;
    /** The mirror's last resync ended without finishing (and none runs now). */
    recoveryStopped?: { reason: "cancelled" | "failed"; resyncId: string; at: number } | null;
    /** Region size in bytes, where known (for the message). */
    regionBytes?: number | null;
  },
  config: TAlarmConfig = defaultAlarmConfig,
): TMirrorAssessment {
  const outOfSync = input.inSync < input.regionCount;
  const none: TMirrorAssessment = {
    alarms: [],
    onTrack: false,
    projectedFinishAt: null,
    withoutRedundancyMs: null,
    slip: null,
  };
  if (!outOfSync) return none;
  const alarms: TAlarm[] = [];
  const outOfSyncCount = input.regionCount - input.inSync;
  const newest = input.history.length - 1;
  const projection = newest >= 0 ? projectionAt(input.history, newest, config) : null;
  const slip = input.trend === "stalled" ? null : etaSlip(input.history, input.now, config);
  const slipping = slip?.slipping === true;
  // Gains long after the stop mean something else (the kernel after a resume) recovers it.
  const stopped =
    input.recoveryStopped &&
    (input.trend !== "recovering" || input.now - input.recoveryStopped.at <= stallMsForStop)
      ? input.recoveryStopped
      : null;
  const onTrack = input.trend === "recovering" && !slipping && !stopped;
  const withoutRedundancyMs =
    input.outOfSyncSince === null ? null : Math.max(0, input.now - input.outOfSyncSince);

  if (stopped) {
    const bytes =
      input.regionBytes === null || input.regionBytes === undefined
        ? ""
        : ` (${formatBytes(outOfSyncCount * input.regionBytes)})`;
    alarms.push({
      kind: "without-redundancy",
      severity: "critical",
      mirror: input.uuid,
      since: input.outOfSyncSince ?? stopped.at,
      message: `resync ${stopped.resyncId} ${stopped.reason}: ${outOfSyncCount.toLocaleString("en-US")} regions${bytes} without redundancy and nothing recovers them — resync what is out of sync`,
    });
    return { alarms, onTrack: false, projectedFinishAt: null, withoutRedundancyMs, slip: null };
  }
  if (input.trend === "stalled") {
    alarms.push({
      kind: "stalled",
      severity: "warning",
      mirror: input.uuid,
      since: null,
      message: `no region recovered for over a minute; ${outOfSyncCount.toLocaleString("en-US")} regions out of sync`,
    });
  }
  if (slip?.slipping) {
    alarms.push({
      kind: "eta-slipping",
      severity: "warning",
      mirror: input.uuid,
      since: input.now - slip.spanMs,
      message: `projected finish moved ${formatDuration(slip.growthMs / 1000)} later over the last ${formatDuration(slip.spanMs / 1000)} (tolerance ${formatDuration(slip.toleranceMs / 1000)})`,
    });
  }
  if (
    withoutRedundancyMs !== null &&
    withoutRedundancyMs >= config.withoutRedundancyMs &&
    input.trend !== "unknown" &&
    !onTrack
  ) {
    alarms.push({
      kind: "without-redundancy",
      severity: "critical",
      mirror: input.uuid,
      since: input.outOfSyncSince,
      message: `without redundancy for ${formatDuration(withoutRedundancyMs / 1000)} (limit ${formatDuration(config.withoutRedundancyMs / 1000)}) and ${input.trend === "stalled" ? "not recovering" : "its ETA slipping"}`,
    });
  }
  return {
    alarms,
    onTrack,
    projectedFinishAt: onTrack ? (projection?.finishAt ?? null) : null,
    withoutRedundancyMs,
    slip,
  };
}

/** Worst first: critical before warning, then the longest-standing, then by mirror. */
export function rollUpAlarms(alarms: readonly TAlarm[]): TAlarm[] {
  return [...alarms].sort(
    (a, b) =>
      severityRank[a.severity] - severityRank[b.severity] ||
      kindRank[a.kind] - kindRank[b.kind] ||
      (a.since ?? Number.POSITIVE_INFINITY) - (b.since ?? Number.POSITIVE_INFINITY) ||
      a.mirror.localeCompare(b.mirror),
  );
}
