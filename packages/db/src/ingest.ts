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
