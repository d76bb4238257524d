import type { TResyncProgress } from "@mirrorplane/contracts";
import type { TMirrorObservation } from "../mirror-watch";
import type { TCollectedMirror } from "./fleet";

// The sync observer: what successive looks at the mirrors say about their progress. The
// trend store is read and written by every look (the mirrors list, the overview); the
// durable side (episodes without redundancy, the ETA history) is server/mirror-watch.ts,
// fed with `observations(…)` by the overview and the background watch.

export type TMirrorTrend = "in-sync" | "recovering" | "stalled" | "unknown";

/** A mirror that gains nothing for this long is stalled. */
export const stallMs = 60_000;

/**
 * Progress-aware state (DASHBOARD.md edge 5): a mirror that is out of sync but gaining
 * regions is "recovering" (no alarm); one that has gained nothing for `stallMs` is
 * "stalled" (an alarm). Kept per web process from successive observations.
 */
export class TrendStore {
  readonly #trends = new Map<string, { inSync: number; lastGainAt: number; firstSeenAt: number }>();

  observe(uuid: string, inSync: number, regionCount: number, now: number): TMirrorTrend {
    const trends = this.#trends;
    if (inSync >= regionCount) {
      trends.set(uuid, {
        inSync,
        lastGainAt: now,
        firstSeenAt: trends.get(uuid)?.firstSeenAt ?? now,
      });
      return "in-sync";
    }
    const prev = trends.get(uuid);
    if (!prev) {
      trends.set(uuid, { inSync, lastGainAt: now, firstSeenAt: now });
      return "unknown";
    }
    const lastGainAt = inSync > prev.inSync ? now : prev.lastGainAt;
    trends.set(uuid, { inSync, lastGainAt, firstSeenAt: prev.firstSeenAt });
    if (now - lastGainAt <= stallMs)
      return now - prev.firstSeenAt < 2_000 && inSync <= prev.inSync ? "unknown" : "recovering";
    return "stalled";
  }
}

/** The process's trend store (per loaded bundle, as before). */
const trends = new TrendStore();

export function observeTrend(
  uuid: string,
  inSync: number,
  regionCount: number,
  now: number,
): TMirrorTrend {
  return trends.observe(uuid, inSync, regionCount, now);
}

/** The collected mirrors as the mirror watch records them. */
export function observations(mirrors: Iterable<TCollectedMirror>): TMirrorObservation[] {
  return [...mirrors].map((m) => ({
    uuid: m.uuid,
    inSync: m.inSync,
    regionCount: m.regionCount,
    resyncId: m.resyncId,
    nodeId: m.holders[0]?.nodeId ?? null,
  }));
}

export interface TRecoveryStopped {
  reason: "cancelled" | "failed";
  resyncId: string;
  /** When it ended (ms since epoch). */
  at: number;
}

/**
 * Out of sync with nothing recovering it: no resync runs and the last one was cancelled or
 * failed (a cancel declares nothing in sync and stops the sweep: the agent's cancel).
 */
export function recoveryStoppedOf(
  m: Pick<TCollectedMirror, "inSync" | "regionCount" | "resyncId">,
  progress: TResyncProgress | null,
): TRecoveryStopped | null {
  if (m.inSync >= m.regionCount || m.resyncId !== null || !progress) return null;
  if (progress.state !== "cancelled" && progress.state !== "failed") return null;
  return { reason: progress.state, resyncId: progress.id, at: progress.endedAt ?? Date.now() };
}
