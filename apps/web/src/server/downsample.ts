import type { Db } from "@mirrorplane/db";

export interface SeriesPoint {
  /** Bucket start, ms since epoch. */
  t: number;
  v: number;
}

/**
 * Down-samples on the server so the browser gets about one point per pixel (STYLE.md §9,
 * PERF.md PB7: at most 2,000 points per series). Each bucket keeps its last value — for
 * the monotonic kernel counters sampled here, that is the counter at the bucket's end.
 */
export async function downsampledSeries(
  db: Db,
  args: { nodeId: string; series: string[]; from: Date; to: Date; maxPoints: number },
): Promise<Record<string, SeriesPoint[]>> {
  const spanMs = Math.max(1, args.to.getTime() - args.from.getTime());
  const bucketMs = Math.max(1, Math.ceil(spanMs / args.maxPoints));
  const rows = await db.$queryRaw<Array<{ series: string; bucket: Date; value: number }>>`
    SELECT series,
           date_bin(make_interval(secs => ${bucketMs / 1000}::float8), at, ${args.from}::timestamptz) AS bucket,
           (array_agg(value ORDER BY at DESC))[1] AS value
      FROM samples
     WHERE node_id = ${args.nodeId}
       AND series = ANY(${args.series}::text[])
       AND at >= ${args.from} AND at <= ${args.to}
     GROUP BY series, bucket
     ORDER BY series, bucket`;
  const out: Record<string, SeriesPoint[]> = Object.fromEntries(args.series.map((s) => [s, []]));
  for (const row of rows) out[row.series]?.push({ t: row.bucket.getTime(), v: Number(row.value) });
  return out;
}
