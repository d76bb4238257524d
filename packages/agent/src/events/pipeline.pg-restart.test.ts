import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedPostgres } from "@mirrorplane/db/embedded";
import { createIngestPool, upsertNode } from "@mirrorplane/db/ingest";
import { applyMigrations } from "@mirrorplane/db/migrate";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import type { THostEvent } from "./event.ts";
import { EventPipeline } from "./pipeline.ts";

const log = pino({ level: "silent" });

/**
 * Fault test: a real Postgres server (our own embedded one, not the shared test server)
 * stopped and started again while events keep coming. Nothing lost, nothing doubled.
 */
describe("event pipeline across a Postgres stop and restart (real server)", () => {
  const dir = mkdtemp(join(tmpdir(), "mirrorplane-pg-restart-"));
  let pg: Awaited<ReturnType<typeof startEmbeddedPostgres>> | null = null;
  afterAll(async () => {
    await pg?.stop();
    await rm(await dir, { recursive: true, force: true });
  });

  it("stores every event exactly once", async () => {
    const base = await dir;
    // As root, Postgres runs as the `postgres` user, which must reach its data directory.
    await chmod(base, 0o711);
    const port = 56000 + (process.pid % 1000);
    const start = () => startEmbeddedPostgres({ dir: join(base, "pg"), port, database: "faults" });
    pg = await start();
    await applyMigrations(pg.url);
    const pool = createIngestPool(pg.url);
    const nodeId = "fault-node";
    const register = () =>
      upsertNode(pool, {
        id: nodeId,
        hostname: "h",
        apiUrl: "http://127.0.0.1:1",
        agentVersion: "0",
        kernelRelease: null,
        sampleIntervalMs: 1000,
        startedAt: new Date(),
        lastSeenAt: new Date(),
      });
    const pipeline = new EventPipeline({
      pool,
      nodeId,
      spoolPath: join(base, "events.spool"),
      spoolMaxBytes: 64 << 20,
      log,
      retryMs: 100,
      flushDelayMs: 5,
      batchSize: 50,
      beforeWrite: register,
    });
    await pipeline.start();
    const event = (i: number): THostEvent => ({
      key: `fault:${i}`,
      kind: "memory_failure",
      severity: "warning",
      source: "kmsg",
      occurredAt: Date.now(),
      device: null,
      message: `event ${i}`,
      count: 1,
      simulated: false,
      data: {},
    });
    const total = 3000;
    let i = 0;
    const stream = async (until: number) => {
      for (; i < until; i++) {
        pipeline.emit(event(i));
        // Repeats (a re-read kernel log) must not be stored twice either.
        if (i % 97 === 0) pipeline.emit(event(i));
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    };
    await stream(1000);
    const stopping = pg.stop();
    await stream(1500);
    await stopping;
    await stream(2200);
    await pipeline.flush();
    expect(pipeline.snapshot().databaseReachable).toBe(false);
    expect(pipeline.snapshot().spoolEvents).toBeGreaterThan(0);
    pg = await start();
    await stream(total);
    for (let tries = 0; tries < 600; tries++) {
      await pipeline.flush();
      const s = pipeline.snapshot();
      if (s.databaseReachable && s.spoolEvents === 0 && s.queued === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await pipeline.stop();
    const { rows } = await pool.query<{ n: string; distinct_keys: string }>(
      "SELECT count(*) AS n, count(DISTINCT idempotency_key) AS distinct_keys FROM events WHERE idempotency_key LIKE 'fault:%'",
    );
    expect(rows[0]).toEqual({ n: String(total), distinct_keys: String(total) });
    expect(pipeline.snapshot()).toMatchObject({ dropped: 0, rejected: 0 });
    await pool.end();
  }, 120_000);
});
