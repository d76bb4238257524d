import { createDb, type Db } from "@mirrorplane/db";
import { createIngestPool, type IngestPool } from "@mirrorplane/db/ingest";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type NodeRegistration, SampleStore } from "./store.ts";

const node: NodeRegistration = {
  id: "store-test-node",
  hostname: "h1",
  apiUrl: "http://127.0.0.1:1",
  agentVersion: "0.1.0",
  kernelRelease: "6.18.44",
  sampleIntervalMs: 1000,
  startedAt: new Date("2026-01-01T00:00:00Z"),
};
const log = pino({ level: "silent" });

describe("sample store (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let pool: IngestPool;
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "store");
    db = createDb(database.url, { poolSize: 2 });
    pool = createIngestPool(database.url);
  });
  afterAll(async () => {
    await db.$disconnect();
    await pool.end();
    await database.drop();
  });

  it("registers the node and writes samples with its heartbeat", async () => {
    const store = new SampleStore(pool, node, log);
    await store.register();
    const at = new Date(Date.now() + 60_000);
    await store.record({
      at,
      points: [
        ["khugepaged.pages_to_scan", 4096],
        ["vmstat.thp_fault_alloc", 7],
      ],
    });
    const row = await db.node.findUniqueOrThrow({ where: { id: node.id } });
    expect(row.lastSeenAt.toISOString()).toBe(at.toISOString());
    const samples = await db.sample.findMany({
      where: { nodeId: node.id },
      orderBy: { series: "asc" },
    });
    expect(
      samples.filter((s) => s.at.getTime() === at.getTime()).map((s) => [s.series, s.value]),
    ).toEqual([
      ["khugepaged.pages_to_scan", 4096],
      ["vmstat.thp_fault_alloc", 7],
    ]);
  });

  it("keeps batches while the database is unreachable and writes them, once, when it is back", async () => {
    // A client pointed at a closed port stands for a database that went away.
    const deadDb = createIngestPool("postgresql://postgres:x@127.0.0.1:1/none", 1);
    const failing = new SampleStore(deadDb, node, log);
    const t1 = new Date("2026-01-01T00:01:00Z");
    const t2 = new Date("2026-01-01T00:01:01Z");
    await failing.record({ at: t1, points: [["vmstat.thp_split_page", 1]] });
    await failing.record({ at: t2, points: [["vmstat.thp_split_page", 2]] });
    expect(failing.pendingBatches).toBe(2);
    await deadDb.end();

    // The same pending batches, replayed twice against the live database, land once.
    const live = new SampleStore(pool, node, log);
    for (const b of [
      { at: t1, points: [["vmstat.thp_split_page", 1]] as Array<[string, number]> },
      { at: t2, points: [["vmstat.thp_split_page", 2]] as Array<[string, number]> },
    ]) {
      await live.record(b);
      await live.record(b);
    }
    expect(live.pendingBatches).toBe(0);
    const rows = await db.sample.findMany({
      where: { nodeId: node.id, series: "vmstat.thp_split_page" },
      orderBy: { at: "asc" },
    });
    expect(rows.map((r) => r.value)).toEqual([1, 2]);
    // Replaying old batches never moves the heartbeat backwards.
    const row = await db.node.findUniqueOrThrow({ where: { id: node.id } });
    expect(row.lastSeenAt.getTime()).toBeGreaterThan(t2.getTime());
  });

  it("bounds the queue while the database is down, dropping the oldest", async () => {
    const deadDb = createIngestPool("postgresql://postgres:x@127.0.0.1:1/none", 1);
    const store = new SampleStore(deadDb, node, log, 3);
    for (let i = 0; i < 5; i++) await store.record({ at: new Date(i * 1000), points: [["s", i]] });
    expect(store.pendingBatches).toBe(3);
    await deadDb.end();
  });
});
