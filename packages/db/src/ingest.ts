import pg from "pg";

/**
 * The agent's write path: plain `pg` with set-based SQL, not the Prisma client.
 * Prisma's runtime and query compiler cost the agent ~80 MB of RSS for a handful of
 * statements (PERF.md PB8: ≤ 120 MB), and bulk ingest wants `unnest`/COPY, which Prisma
 * does not do. Reads and the control plane stay on Prisma; the tables are the same.
 */
export type IngestPool = pg.Pool;

export function createIngestPool(url: string, max = 2): IngestPool {
  const pool = new pg.Pool({ connectionString: url, max, connectionTimeoutMillis: 5_000 });
  // An idle client whose server went away must not crash the agent; the next query
  // reports the outage to its caller instead.
  pool.on("error", () => {});
  return pool;
}

export interface NodeRow {
  id: string;
  hostname: string;
  apiUrl: string;
  agentVersion: string;
  kernelRelease: string | null;
  sampleIntervalMs: number;
  startedAt: Date;
  lastSeenAt: Date;
}

export interface SampleRow {
  series: string;
  at: Date;
  value: number;
}

const upsertNodeSql = `
  INSERT INTO nodes (id, hostname, api_url, agent_version, kernel_release, sample_interval_ms, started_at, last_seen_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
  ON CONFLICT (id) DO UPDATE SET
    hostname = EXCLUDED.hostname, api_url = EXCLUDED.api_url, agent_version = EXCLUDED.agent_version,
    kernel_release = EXCLUDED.kernel_release, sample_interval_ms = EXCLUDED.sample_interval_ms,
    started_at = EXCLUDED.started_at,
    last_seen_at = GREATEST(nodes.last_seen_at, EXCLUDED.last_seen_at)`;

function nodeParams(node: NodeRow) {
  return [
    node.id,
    node.hostname,
    node.apiUrl,
    node.agentVersion,
    node.kernelRelease,
    node.sampleIntervalMs,
    node.startedAt,
    node.lastSeenAt,
  ];
}

export async function upsertNode(pool: IngestPool, node: NodeRow): Promise<void> {
  await pool.query(upsertNodeSql, nodeParams(node));
}

/**
 * One transaction: the node's heartbeat and its samples, as one set-based insert.
 * (node, series, at) is the key, so a replayed batch is stored once.
 */
export async function writeHeartbeatAndSamples(
  pool: IngestPool,
  node: NodeRow,
  samples: SampleRow[],
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query(upsertNodeSql, nodeParams(node));
    if (samples.length > 0) {
      await client.query(
        `INSERT INTO samples (node_id, series, at, value)
         SELECT $1, s, a, v FROM unnest($2::text[], $3::timestamptz[], $4::float8[]) AS t(s, a, v)
         ON CONFLICT DO NOTHING`,
        [
          node.id,
          samples.map((s) => s.series),
          samples.map((s) => s.at),
          samples.map((s) => s.value),
        ],
      );
    }
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

/** One event row as the agent writes it (`prisma/schema.prisma` model Event). */
export interface EventRow {
  idempotencyKey: string;
  kind: string;
  severity: string;
  source: string;
  occurredAt: Date;
  device: string | null;
  message: string;
  /** u64 bounds as decimal strings (a whole device is 0..2^64−1). */
  rangeStart: string | null;
  rangeEnd: string | null;
  rangeUnit: string | null;
  count: number;
  mirror: string | null;
  leg: string | null;
  regionStart: number | null;
  regionEnd: number | null;
  simulated: boolean;
  rawLine: string | null;
  kernelSeq: number | null;
  kernelTimeUs: number | null;
  data: unknown;
}

/** Column order shared by the set-based insert below and COPY (benchmarks). */
export const eventColumns = [
  "idempotency_key",
  "node_id",
  "kind",
  "severity",
  "source",
  "occurred_at",
  "device",
  "message",
  "range_start",
  "range_end",
  "range_unit",
  "count",
  "mirror",
  "leg",
  "region_start",
  "region_end",
  "simulated",
  "raw_line",
  "kernel_seq",
  "kernel_time_us",
  "data",
] as const;

const insertEventsSql = `
  INSERT INTO events (${eventColumns.join(", ")})
  SELECT k, $1, kd, sv::"Severity", src, oa, dv, msg, rs, re, ru, cnt, mr, lg, rgs, rge, sim, raw, ks, kt, dt
  FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[],
              $8::text[], $9::numeric[], $10::numeric[], $11::text[], $12::int8[], $13::text[],
              $14::text[], $15::int8[], $16::int8[], $17::bool[], $18::text[], $19::int8[],
              $20::int8[], $21::jsonb[])
    AS t(k, kd, sv, src, oa, dv, msg, rs, re, ru, cnt, mr, lg, rgs, rge, sim, raw, ks, kt, dt)
  ON CONFLICT (idempotency_key) DO NOTHING`;

/**
 * Writes a batch of events as one set-based statement (one round trip, one plan) and
 * returns how many were new. The idempotency key makes replays (spool, retries,
 * re-read kernel log) store each event once.
 */
export async function insertEvents(
  pool: IngestPool,
  nodeId: string | null,
  rows: EventRow[],
): Promise<number> {
  if (rows.length === 0) return 0;
  const cols: unknown[][] = Array.from({ length: 20 }, () => new Array(rows.length));
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    cols[0]![i] = r.idempotencyKey;
    cols[1]![i] = r.kind;
    cols[2]![i] = r.severity;
    cols[3]![i] = r.source;
    cols[4]![i] = r.occurredAt;
    cols[5]![i] = r.device;
    // Postgres text cannot hold NUL; kernel lines are escaped, but spooled or hostile
    // input must not make a whole batch fail.
    cols[6]![i] = stripNul(r.message);
    cols[7]![i] = r.rangeStart;
    cols[8]![i] = r.rangeEnd;
    cols[9]![i] = r.rangeUnit;
    cols[10]![i] = r.count;
    cols[11]![i] = r.mirror;
    cols[12]![i] = r.leg;
    cols[13]![i] = r.regionStart;
    cols[14]![i] = r.regionEnd;
    cols[15]![i] = r.simulated;
    cols[16]![i] = r.rawLine === null ? null : stripNul(r.rawLine);
    cols[17]![i] = r.kernelSeq;
    cols[18]![i] = r.kernelTimeUs;
    cols[19]![i] = JSON.stringify(r.data ?? {}, nulFreeStrings);
  }
  const result = await pool.query(insertEventsSql, [nodeId, ...cols]);
  return result.rowCount ?? 0;
}

/** jsonb rejects `\u0000` too: replace NUL inside every string value. */
function nulFreeStrings(_key: string, value: unknown): unknown {
  return typeof value === "string" ? stripNul(value) : value;
}

function stripNul(text: string): string {
  return text.includes("\u0000") ? text.replaceAll("\u0000", "\\x00") : text;
}

/**
 * Whether a failed write was refused for its data (SQLSTATE class 22 data exception, 23
 * integrity violation) rather than for the connection: retrying such a batch as-is can
 * never succeed, so the caller splits it and rejects only the bad rows.
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23"));
}

export interface SampleRetention {
  nodeId: string;
  /** Samples older than this are deleted. */
  deleteBefore: Date;
  /** Samples older than this (and newer than deleteBefore) are down-sampled… */
  downsampleBefore: Date;
  /** …to the last sample of each series in each bucket of this many seconds. */
  bucketSeconds: number;
}

/**
 * Retention and down-sampling for one node's samples. Keeping the last value of each
 * bucket keeps counters exact at bucket edges (rates stay right) and is idempotent:
 * running it again over down-sampled data deletes nothing.
 */
export async function pruneSamples(
  pool: IngestPool,
  retention: SampleRetention,
): Promise<{ deleted: number; downsampled: number }> {
  const deleted = await pool.query("DELETE FROM samples WHERE node_id = $1 AND at < $2", [
    retention.nodeId,
    retention.deleteBefore,
  ]);
  const downsampled = await pool.query(
    `DELETE FROM samples s
     USING (
       SELECT series, at, row_number() OVER (
         PARTITION BY series, floor(extract(epoch FROM at) / $4) ORDER BY at DESC) AS rank
       FROM samples WHERE node_id = $1 AND at >= $2 AND at < $3
     ) r
     WHERE s.node_id = $1 AND s.series = r.series AND s.at = r.at AND r.rank > 1`,
    [retention.nodeId, retention.deleteBefore, retention.downsampleBefore, retention.bucketSeconds],
  );
  return { deleted: deleted.rowCount ?? 0, downsampled: downsampled.rowCount ?? 0 };
}
