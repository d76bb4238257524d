import { deviceErrorKinds, memoryErrorKinds } from "@mirrorplane/contracts";
import type { Db } from "@mirrorplane/db";

/**
 * One time axis across layers (DASHBOARD.md edge 10), down-sampled on the server to the
 * bucket count the chart asks for (about one per pixel, STYLE.md §9): khugepaged's
 * collapse activity and THP faults (samples), memory-error and device-error counts (the
 * contract's `memoryErrorKinds`, `deviceErrorKinds`), resync event counts, and the resync
 * rate in regions per second.
 *
 * The resync rate comes from the `resync` events the agents' resync controllers write
 * (packages/agent/src/clusterlog/resync-control.ts): `start` (the range's sync bits are
 * cleared: 0 in sync), `progress` every ~10 s (`inSync`), and `done` (`regions`),
 * `cancelled`/`failed` (`inSync`). Between two consecutive events of one run the regions
 * gained are spread evenly over the time between them, and each bucket gets the share
 * that falls inside it, divided by the bucket's length: the mean rate over the bucket,
 * exact for any bucket size (buckets shorter than the ~10 s between progress events show
 * the interval's mean, not alternating zeros and spikes). Concurrent runs add up.
 */
export interface TTimelinePoint {
  /** Bucket start, ms since epoch. */
  t: number;
  collapsed: number | null;
  faults: number | null;
  memory: number;
  device: number;
  resync: number;
  /** Mean resync rate over the bucket, regions per second (0 when nothing ran). */
  resyncRate: number;
}

export interface TResyncScope {
  /** Only the runs recorded by this node (null: every node's, the whole cluster). */
  nodeId?: string | null;
  /** Only this mirror's runs. */
  mirror?: string | null;
}

/**
 * Bucket length for at most `buckets` buckets over [from, to]: whole seconds (nothing on
 * the axis is sampled faster, and bucket starts stay exact), at least one.
 */
export function bucketMsFor(from: Date, to: Date, buckets: number): number {
  return Math.max(1_000, Math.ceil((to.getTime() - from.getTime()) / buckets / 1_000) * 1_000);
}

/** Mean resync rate per bucket (regions/s), for the buckets that had any; see above. */
export async function resyncRateBuckets(
  db: Db,
  args: { from: Date; to: Date; bucketMs: number } & TResyncScope,
): Promise<Map<number, number>> {
  const step = args.bucketMs / 1000;
  // An interval may start before the window (the run's previous event): look back far
  // enough for the ~10 s between progress events, with a wide margin.
  const lookback = new Date(args.from.getTime() - 3_600_000);
  const nodeId = args.nodeId ?? null;
  const mirror = args.mirror ?? null;
  const rows = await db.$queryRaw<Array<{ bucket: Date; rate: number }>>`
    WITH p AS (
      SELECT node_id, data->>'resyncId' AS rid, occurred_at AS t,
             CASE data->>'what'
               WHEN 'start' THEN 0::float8
               WHEN 'done' THEN (data->>'regions')::float8
               ELSE (data->>'inSync')::float8
             END AS in_sync
        FROM events
       WHERE kind = 'resync' AND data ? 'resyncId'
         AND data->>'what' IN ('start', 'progress', 'done', 'cancelled', 'failed')
         AND occurred_at >= ${lookback} AND occurred_at <= ${args.to}
         AND (${nodeId}::text IS NULL OR node_id = ${nodeId}::text)
         AND (${mirror}::text IS NULL OR mirror = ${mirror}::text)
    ), iv AS (
      SELECT lag(t) OVER w AS t0, t AS t1, in_sync - lag(in_sync) OVER w AS gained
        FROM p WHERE in_sync IS NOT NULL
      WINDOW w AS (PARTITION BY node_id, rid ORDER BY t)
    ), b AS (
      SELECT gs AS bucket, iv.t0, iv.t1, iv.gained
        FROM iv,
             generate_series(
               date_bin(make_interval(secs => ${step}::float8), greatest(iv.t0, ${args.from}::timestamptz), ${args.from}::timestamptz),
               least(iv.t1, ${args.to}::timestamptz),
               make_interval(secs => ${step}::float8)) AS gs
       WHERE iv.t0 IS NOT NULL AND iv.t1 > iv.t0 AND iv.gained > 0
         AND iv.t1 > ${args.from} AND iv.t0 < ${args.to}
    )
    SELECT bucket,
           sum(gained
               * extract(epoch FROM least(t1, bucket + make_interval(secs => ${step}::float8)) - greatest(t0, bucket))
               / extract(epoch FROM t1 - t0)) / ${step}::float8 AS rate
      FROM b
     GROUP BY bucket`;
  const out = new Map<number, number>();
  for (const r of rows) {
    const rate = Number(r.rate);
    if (rate > 0) out.set(r.bucket.getTime(), rate);
  }
  return out;
}

/**
 * The timeline of one node (khugepaged samples, its events and the cluster's events with
 * no node) over [from, to], in buckets of `bucketMs`. `nodeId` null: only the resync rate
 * and the events with no node.
 */
export async function timelinePoints(
  db: Db,
  args: {
    nodeId: string | null;
    from: Date;
    to: Date;
    bucketMs: number;
    resync: TResyncScope;
    /** Only events about this mirror/device (an incident's subject); the rate is scoped by `resync`. */
    eventMirror?: string | null;
  },
): Promise<TTimelinePoint[]> {
  const { from, to, bucketMs } = args;
  const step = bucketMs / 1000;
  const nodeId = args.nodeId;
  const eventMirror = args.eventMirror ?? null;
  const [samples, events, rates] = await Promise.all([
    nodeId
      ? db.$queryRaw<Array<{ bucket: Date; series: string; value: number }>>`
          SELECT date_bin(make_interval(secs => ${step}::float8), at, ${from}::timestamptz) AS bucket, series,
                 max(value) AS value
            FROM samples
           WHERE node_id = ${nodeId} AND at >= ${from} AND at <= ${to}
             AND series IN ('khugepaged.pages_collapsed', 'vmstat.thp_collapse_alloc', 'vmstat.thp_fault_alloc')
           GROUP BY 1, 2 ORDER BY 1`
      : Promise.resolve([]),
    db.$queryRaw<Array<{ bucket: Date; grp: string; n: bigint }>>`
      SELECT date_bin(make_interval(secs => ${step}::float8), occurred_at, ${from}::timestamptz) AS bucket,
             CASE WHEN kind = ANY(${memoryErrorKinds}::text[]) THEN 'memory'
                  WHEN kind = ANY(${deviceErrorKinds}::text[]) THEN 'device'
                  WHEN kind = 'resync' THEN 'resync' ELSE 'other' END AS grp,
             count(*) AS n
        FROM events
       WHERE (node_id IS NULL OR node_id = ${nodeId}::text)
         AND occurred_at >= ${from} AND occurred_at <= ${to}
         AND (${eventMirror}::text IS NULL OR mirror IS NULL OR mirror = ${eventMirror}::text)
       GROUP BY 1, 2`,
    resyncRateBuckets(db, { from, to, bucketMs, ...args.resync }),
  ]);
  const count = Math.max(1, Math.ceil((to.getTime() - from.getTime()) / bucketMs));
  const points: TTimelinePoint[] = Array.from({ length: count }, (_, i) => ({
    t: from.getTime() + i * bucketMs,
    collapsed: null,
    faults: null,
    memory: 0,
    device: 0,
    resync: 0,
    resyncRate: 0,
  }));
  const at = (t: number) =>
    points[Math.min(count - 1, Math.max(0, Math.floor((t - from.getTime()) / bucketMs)))]!;
  // Counters become per-bucket increases (a wrapped or reset counter shows as nothing, not negative).
  const last = new Map<string, number>();
  for (const s of samples) {
    const prev = last.get(s.series);
    last.set(s.series, s.value);
    if (prev === undefined) continue;
    const delta = Math.max(0, s.value - prev);
    const p = at(s.bucket.getTime());
    if (s.series === "vmstat.thp_fault_alloc") p.faults = (p.faults ?? 0) + delta;
    else p.collapsed = (p.collapsed ?? 0) + delta;
  }
  for (const e of events) {
    const p = at(e.bucket.getTime());
    if (e.grp === "memory" || e.grp === "device" || e.grp === "resync") p[e.grp] += Number(e.n);
  }
  for (const [t, rate] of rates) {
    if (t < from.getTime() || t > to.getTime()) continue;
    at(t).resyncRate += rate;
  }
  return points;
}
