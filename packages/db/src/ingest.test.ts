import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  createIngestPool,
  type IngestPool,
  pruneSamples,
  upsertNode,
  writeHeartbeatAndSamples,
} from "./ingest.ts";
import { createTestDatabase } from "./testing.ts";

describe("sample retention and down-sampling (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let pool: IngestPool;
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "ingest");
    pool = createIngestPool(database.url);
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
  });

  it("deletes old samples and keeps the last sample per series and bucket, idempotently", async () => {
    const node = {
      id: "retention-node",
      hostname: "h",
      apiUrl: "http://x",
      agentVersion: "0",
      kernelRelease: null,
      sampleIntervalMs: 10_000,
      startedAt: new Date(0),
      lastSeenAt: new Date(0),
    };
    await upsertNode(pool, node);
    const t0 = Date.UTC(2026, 0, 1);
    // Every 10 s for 20 minutes, two series.
    const samples = [];
    for (let s = 0; s < 120; s++)
      for (const series of ["a", "b"])
        samples.push({ series, at: new Date(t0 + s * 10_000), value: s });
    await writeHeartbeatAndSamples(pool, node, samples);
    const retention = {
      nodeId: node.id,
      deleteBefore: new Date(t0 + 5 * 60_000),
      downsampleBefore: new Date(t0 + 15 * 60_000),
      bucketSeconds: 300,
    };
    const first = await pruneSamples(pool, retention);
    expect(first.deleted).toBe(60); // the first 5 minutes, both series
    const { rows } = await pool.query<{ series: string; at: Date; value: number }>(
      "SELECT series, at, value FROM samples WHERE node_id = $1 AND series = 'a' ORDER BY at",
      [node.id],
    );
    // 5–15 min: the last sample of each 5-minute bucket; 15–20 min: untouched.
    expect(rows.filter((r) => r.at.getTime() < t0 + 15 * 60_000).map((r) => r.value)).toEqual([
      59, 89,
    ]);
    expect(rows.filter((r) => r.at.getTime() >= t0 + 15 * 60_000)).toHaveLength(30);
    expect(await pruneSamples(pool, retention)).toEqual({ deleted: 0, downsampled: 0 });
  });
});
