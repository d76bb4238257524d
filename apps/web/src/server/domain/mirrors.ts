import { blastRadiusCaveats, deviceBlastRadius, nodeBlastRadius } from "../blast-radius";
import type { ContextInner } from "../trpc";
import {
  agentCall,
  collect,
  held,
  holderOf,
  latestProgress,
  mirrorView,
  regionBytes,
  shownLegs,
} from "./fleet";
import { observeTrend, recoveryStoppedOf } from "./sync-observer";

// What the mirrors pages read: the list, one mirror's detail, blast radius, region map and
// resync history. Writes (resyncs) are in resync.ts, their dry runs in resync-plan.ts.

export async function mirrorList(ctx: ContextInner) {
  const { mirrors, unreachable } = await collect(ctx);
  return {
    mirrors: [...mirrors.values()]
      .map((m) => ({
        uuid: m.uuid,
        name: m.name,
        regionCount: m.regionCount,
        inSync: m.inSync,
        percent: m.regionCount ? (100 * m.inSync) / m.regionCount : 100,
        resyncRunning: m.resyncId !== null,
        trend: observeTrend(m.uuid, m.inSync, m.regionCount, ctx.now().getTime()),
        nodes: m.holders.map((h) => h.nodeId),
        logType: m.logType,
        regionBytes: regionBytes(m),
        sizeBytes: m.sizeBytes,
        logDevice: m.logDevice,
        ...shownLegs(m),
      }))
      .sort((a, b) => a.percent - b.percent || a.uuid.localeCompare(b.uuid)),
    unreachable,
  };
}

export async function mirrorDetail(ctx: ContextInner, uuid: string) {
  const { mirrors } = await collect(ctx);
  const m = held(mirrors, uuid);
  const progress = await latestProgress(m);
  const all = [...mirrors.values()].map(mirrorView);
  const outOfSync = m.regionCount - m.inSync;
  const bytesPerRegion = regionBytes(m);
  return {
    /** Regions without redundancy now, and whether anything is recovering them. */
    redundancy: {
      outOfSync,
      bytes: bytesPerRegion === null ? null : outOfSync * bytesPerRegion,
      stopped: recoveryStoppedOf(m, progress),
    },
    uuid: m.uuid,
    name: m.name,
    regionCount: m.regionCount,
    inSync: m.inSync,
    nodes: m.holders.map((h) => h.nodeId),
    progress,
    logType: m.logType,
    regionBytes: regionBytes(m),
    sizeBytes: m.sizeBytes,
    logDevice: m.logDevice,
    // Each holder's kernel's legs, and per leg what its device's failure would take.
    views: m.views.map((v) => ({
      nodeId: v.nodeId,
      reason: v.reason,
      // What a leg replacement rewrites (null: not reported, e.g. a simulated kernel).
      table: v.table ?? null,
      dmUuid: v.dmUuid ?? null,
      legs:
        v.legs?.map((leg) => ({
          ...leg,
          blastRadius: deviceBlastRadius(all, v.nodeId, leg.device).atRisk,
        })) ?? null,
    })),
    blastRadiusCaveat: blastRadiusCaveats.device,
  };
}

/**
 * Blast radius (DASHBOARD.md edge 6): the mirrors that lose their last good copy if this
 * device (as `nodeId` names it) or, without a device, this node fails now.
 */
export async function mirrorsBlastRadius(
  ctx: ContextInner,
  input: { nodeId: string; device?: string | undefined },
) {
  const { mirrors, unreachable } = await collect(ctx);
  const all = [...mirrors.values()].map(mirrorView);
  const result =
    input.device === undefined
      ? nodeBlastRadius(all, input.nodeId)
      : deviceBlastRadius(all, input.nodeId, input.device);
  return {
    nodeId: input.nodeId,
    device: input.device ?? null,
    ...result,
    caveat: input.device === undefined ? blastRadiusCaveats.node : blastRadiusCaveats.device,
    unreachable,
  };
}

/** The region map, reduced on the agent to about one bucket per canvas pixel. */
export async function regionMap(ctx: ContextInner, input: { uuid: string; buckets: number }) {
  const m = await holderOf(ctx, input.uuid);
  return agentCall(() => m.holders[0]!.client.resync.regionMap.query(input));
}

/**
 * Every resync run of this mirror (DASHBOARD.md edge 11) from the resync events in
 * Postgres, so the history survives agent restarts: start, end, range, outcome.
 */
export async function resyncHistory(ctx: ContextInner, input: { uuid: string; limit: number }) {
  const rows = await ctx.db.$queryRaw<
    Array<{
      resync_id: string;
      started: Date;
      ended: Date | null;
      first: bigint | null;
      last: bigint | null;
      outcome: string | null;
      events: bigint;
      node_id: string | null;
    }>
  >`
      SELECT data->>'resyncId' AS resync_id,
             min(occurred_at) AS started,
             max(occurred_at) FILTER (WHERE data->>'what' IN ('done', 'failed', 'cancelled')) AS ended,
             min(region_start) AS first, max(region_end) AS last,
             (array_agg(data->>'what' ORDER BY occurred_at DESC, id DESC)
                FILTER (WHERE data->>'what' IN ('done', 'failed', 'cancelled')))[1] AS outcome,
             count(*) AS events, min(node_id) AS node_id
        FROM events
       WHERE kind = 'resync' AND mirror = ${input.uuid} AND data ? 'resyncId'
       GROUP BY 1
       ORDER BY 2 DESC
       LIMIT ${input.limit}`;
  return rows.map((r) => ({
    id: r.resync_id,
    startedAt: r.started,
    endedAt: r.ended,
    first: r.first === null ? null : Number(r.first),
    last: r.last === null ? null : Number(r.last),
    outcome: r.outcome ?? "running or interrupted",
    events: Number(r.events),
    nodeId: r.node_id,
  }));
}
