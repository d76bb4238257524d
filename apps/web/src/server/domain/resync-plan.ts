import { AppError } from "@mirrorplane/contracts";
import { outOfSyncOutside, outOfSyncSpan } from "~/lib/protection";
import { freshness } from "../freshness";
import type { ContextInner } from "../trpc";
import {
  collect,
  holderOf,
  latestProgress,
  regionBytes,
  regionStates,
  shownLegs,
  type TCollectedMirror,
} from "./fleet";

// Dry runs: what a resync of a range, or a bulk resync of whole mirrors, would do before
// anything happens, and the per-node guard that resync.ts applies the same way.

/** At most this many resyncs running per node at once (DASHBOARD.md edge 9: bulk with guards). */
export const maxResyncsPerNode = 2;

/** Resyncs running now per node (a mirror's resync counts on every node holding it). */
export function runningPerNode(mirrors: Map<string, TCollectedMirror>): Map<string, number> {
  const running = new Map<string, number>();
  for (const m of mirrors.values()) {
    if (m.resyncId === null) continue;
    for (const h of m.holders) running.set(h.nodeId, (running.get(h.nodeId) ?? 0) + 1);
  }
  return running;
}

/** Counts one more resync on each of `nodeIds`. */
export function countStarted(running: Map<string, number>, nodeIds: Iterable<string>): void {
  for (const n of nodeIds) running.set(n, (running.get(n) ?? 0) + 1);
}

/** The first of `nodeIds` already at `maxResyncsPerNode`, or undefined. */
export function busyNode(running: Map<string, number>, nodeIds: string[]): string | undefined {
  return nodeIds.find((n) => (running.get(n) ?? 0) >= maxResyncsPerNode);
}

function rateBasis(throttle: number | undefined, progressRate: number | null | undefined) {
  return (throttle ? "throttle" : progressRate ? "last measured rate" : null) as string | null;
}

export interface TPlanInput {
  uuid: string;
  first?: number | undefined;
  last?: number | undefined;
  throttle?: number | undefined;
  /** Plan the smallest range holding every region out of sync now (first/last ignored). */
  outOfSyncOnly?: boolean | undefined;
}

/** Dry run: what a resync of this range would do, before anything happens. */
export async function resyncPlan(ctx: ContextInner, input: TPlanInput) {
  const m = await holderOf(ctx, input.uuid);
  const map = await regionStates(m).catch(() => null);
  const span = map ? outOfSyncSpan(map.states, map.regionsPerBucket, m.regionCount) : null;
  if (input.outOfSyncOnly && !span)
    throw new AppError(
      map ? "PRECONDITION_FAILED" : "BAD_GATEWAY",
      map
        ? "Every region of this mirror is in sync: there is nothing to resync."
        : "The agent did not send the region map, so what is out of sync is not known.",
    );
  const first = input.outOfSyncOnly ? span!.first : (input.first ?? 0);
  const last = input.outOfSyncOnly
    ? span!.last
    : Math.min(input.last ?? m.regionCount - 1, m.regionCount - 1);
  if (first > last)
    throw new AppError(
      "BAD_REQUEST",
      `the mirror has ${m.regionCount} regions (0–${m.regionCount - 1})`,
    );
  const regions = last - first + 1;
  const bytesPerRegion = regionBytes(m);
  // dm-raid1 copies each region from the default mirror (the source leg) to the others; a
  // leg with errors cannot take the copy, so its regions stay out of sync.
  const { legs, legsNodeId, legsUnknownReason } = shownLegs(m);
  const source = legs?.find((l) => l.source) ?? null;
  const progress = await latestProgress(m);
  const rate = input.throttle ?? progress?.rate ?? null;
  const nodes = await ctx.db.node.findMany({
    where: { id: { in: m.holders.map((h) => h.nodeId) } },
    select: { id: true, lastSeenAt: true, sampleIntervalMs: true },
  });
  return {
    uuid: m.uuid,
    first,
    last,
    regions,
    regionBytes: bytesPerRegion,
    /** Bytes copied: regions × region size (the mirror's last region may be shorter). */
    bytes:
      bytesPerRegion === null
        ? null
        : Math.min(
            regions * bytesPerRegion,
            (m.sizeBytes ?? Number.POSITIVE_INFINITY) - first * bytesPerRegion,
          ),
    source: source && { ...source, index: legs!.indexOf(source), nodeId: legsNodeId },
    targets:
      legs
        ?.map((l, index) => ({ ...l, index }))
        .filter((l) => !l.source)
        .map(({ device, label, health, index }) => ({ device, label, health, index })) ?? null,
    legsUnknownReason,
    wholeMirror: first === 0 && last === m.regionCount - 1,
    currentlyOutOfSync: m.regionCount - m.inSync,
    outOfSyncOnly: input.outOfSyncOnly === true,
    /**
     * Without redundancy while it runs: the whole range (a resync marks it out of sync at
     * its start) and whatever outside it is out of sync now; the mirror's in-sync share
     * at the start. Upper bounds when the agent's map holds several regions per bucket.
     */
    unprotectedDuring: (() => {
      const outside = map
        ? outOfSyncOutside(map.states, map.regionsPerBucket, m.regionCount, first, last)
        : null;
      const unprotected = regions + (outside ?? 0);
      return {
        regions: unprotected,
        bytes: bytesPerRegion === null ? null : unprotected * bytesPerRegion,
        percentInSyncAtStart: m.regionCount
          ? (100 * Math.max(0, m.regionCount - unprotected)) / m.regionCount
          : 100,
        exact: map !== null && map.regionsPerBucket === 1,
      };
    })(),
    estimatedSeconds: rate ? regions / rate : null,
    rateBasis: input.throttle ? "throttle" : progress?.rate ? "last measured rate" : null,
    sourceHealth: nodes.map((n) => ({
      nodeId: n.id,
      freshness: freshness(n.lastSeenAt, n.sampleIntervalMs, ctx.now()),
    })),
    runningResync:
      progress && (progress.state === "running" || progress.state === "paused")
        ? progress.id
        : null,
  };
}

/**
 * What a bulk resync of whole mirrors would do, before it is confirmed: per mirror the
 * regions and bytes left without redundancy while it runs and for how long (at the
 * throttle, or the mirror's last measured rate), and which the per-node guard would
 * refuse now.
 */
export async function bulkResyncPlan(
  ctx: ContextInner,
  input: { uuids: string[]; throttle?: number | undefined },
) {
  const { mirrors } = await collect(ctx);
  const running = runningPerNode(mirrors);
  const items = await Promise.all(
    input.uuids.map(async (uuid) => {
      const m = mirrors.get(uuid);
      if (!m || m.holders.length === 0)
        return {
          uuid,
          regions: 0,
          bytes: null as number | null,
          estimatedSeconds: null as number | null,
          rateBasis: null as string | null,
          refusal: "no reachable node holds it" as string | null,
          holders: [] as string[],
        };
      const progress = await latestProgress(m);
      const rate = input.throttle ?? progress?.rate ?? null;
      const bytesPerRegion = regionBytes(m);
      return {
        uuid,
        regions: m.regionCount,
        bytes: m.sizeBytes ?? (bytesPerRegion === null ? null : m.regionCount * bytesPerRegion),
        estimatedSeconds: rate ? m.regionCount / rate : null,
        rateBasis: rateBasis(input.throttle, progress?.rate),
        refusal: null as string | null,
        holders: m.holders.map((h) => h.nodeId),
      };
    }),
  );
  // The guard as bulkResync applies it, in the same order.
  for (const item of items) {
    if (item.refusal) continue;
    const busy = busyNode(running, item.holders);
    if (busy) {
      item.refusal = `node ${busy} would already run ${running.get(busy)} resyncs (at most ${maxResyncsPerNode})`;
      continue;
    }
    countStarted(running, item.holders);
  }
  const started = items.filter((i) => !i.refusal);
  const known = started.every((i) => i.bytes !== null);
  return {
    items: items.map(({ uuid, regions, bytes, estimatedSeconds, rateBasis, refusal }) => ({
      uuid,
      regions,
      bytes,
      estimatedSeconds,
      rateBasis,
      refusal,
    })),
    totalRegions: started.reduce((n, i) => n + i.regions, 0),
    totalBytes: known ? started.reduce((n, i) => n + (i.bytes ?? 0), 0) : null,
    /** The longest of them (they run side by side), where every one has an estimate. */
    longestSeconds: started.every((i) => i.estimatedSeconds !== null)
      ? Math.max(0, ...started.map((i) => i.estimatedSeconds ?? 0))
      : null,
  };
}
