import { appendFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createIngestPool, type IngestPool, upsertNode } from "@mirrorplane/db/ingest";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { TcpProxy } from "../../testing/tcp-proxy.ts";
import type { THostEvent } from "./event.ts";
import { EventPipeline } from "./pipeline.ts";

const log = pino({ level: "silent" });
const nodeId = "pipeline-node";

function event(i: number, extra: Partial<THostEvent> = {}): THostEvent {
  return {
    key: `${nodeId}:test:${i}`,
    kind: "device_failure",
    severity: "error",
    source: "kmsg",
    occurredAt: Date.UTC(2026, 0, 1) + i,
    device: "nvme0n1",
    message: `I/O error, dev nvme0n1, sector ${i}`,
    range: { start: String(i), end: String(i), unit: "sector" },
    count: 1,
    simulated: false,
    rawLine: `I/O error, dev nvme0n1, sector ${i}`,
    kernelSeq: i,
    kernelTimeUs: i * 1000,
    data: { what: "io_error" },
    ...extra,
  };
}

describe("event pipeline (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let pool: IngestPool;
  let dir: string;
  const proxy = { current: null as TcpProxy | null };

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "pipeline");
    pool = createIngestPool(database.url);
    dir = await mkdtemp(join(tmpdir(), "mirrorplane-pipeline-"));
    await upsertNode(pool, {
      id: nodeId,
      hostname: "h",
      apiUrl: "http://127.0.0.1:1",
      agentVersion: "0",
      kernelRelease: null,
      sampleIntervalMs: 1000,
      startedAt: new Date(),
      lastSeenAt: new Date(),
    });
  });
  afterAll(async () => {
    await proxy.current?.close();
    await pool.end();
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const keysLike = async (prefix: string) =>
    (
      await pool.query<{ idempotency_key: string }>(
        "SELECT idempotency_key FROM events WHERE idempotency_key LIKE $1 ORDER BY idempotency_key",
        [`${prefix}%`],
      )
    ).rows.map((r) => r.idempotency_key);

  it("stores every column of a batch, and a repeated event once", async () => {
    const pipeline = new EventPipeline({
      pool,
      nodeId,
      spoolPath: join(dir, "a.spool"),
      spoolMaxBytes: 1 << 20,
      log,
    });
    await pipeline.start();
    const e = event(1, {
      key: "cols:1",
      mirror: "mirror0",
      leg: "nvme0n1",
      regions: { start: 3, end: 4 },
      range: { start: "0", end: "18446744073709551615", unit: "byte" },
      count: 1_610_612_736,
      simulated: true,
    });
    pipeline.emit([e, e]);
    pipeline.emit(e);
    await pipeline.flush();
    await pipeline.stop();
    const { rows } = await pool.query(
      "SELECT kind, severity, node_id, device, mirror, leg, region_start, region_end, range_start::text, range_end::text, range_unit, count, simulated, raw_line, kernel_seq, kernel_time_us, occurred_at, data FROM events WHERE idempotency_key = 'cols:1'",
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      kind: "device_failure",
      severity: "error",
      node_id: nodeId,
      device: "nvme0n1",
      mirror: "mirror0",
      leg: "nvme0n1",
      region_start: "3",
      region_end: "4",
      range_start: "0",
      range_end: "18446744073709551615",
      range_unit: "byte",
      count: "1610612736",
      simulated: true,
      raw_line: "I/O error, dev nvme0n1, sector 1",
      kernel_seq: "1",
      kernel_time_us: "1000",
      data: { what: "io_error" },
    });
    expect((rows[0].occurred_at as Date).getTime()).toBe(Date.UTC(2026, 0, 1) + 1);
    expect(pipeline.snapshot()).toMatchObject({ written: 1, duplicates: 2 });
  });

  it("spools while Postgres is unreachable and replays, once, when it is back", async () => {
    const p = new TcpProxy("127.0.0.1", Number(new URL(database.url).port));
    proxy.current = p;
    await p.start();
    const viaProxy = createIngestPool(p.rewrite(database.url));
    const spoolPath = join(dir, "b.spool");
    const pipeline = new EventPipeline({
      pool: viaProxy,
      nodeId,
      spoolPath,
      spoolMaxBytes: 1 << 20,
      log,
      retryMs: 60_000,
    });
    await pipeline.start();
    const mk = (i: number) => event(i, { key: `outage:${String(i).padStart(4, "0")}` });
    pipeline.emit([mk(0), mk(1)]);
    await pipeline.flush();
    p.down();
    for (let i = 2; i < 50; i++) pipeline.emit(mk(i));
    await pipeline.flush();
    expect(pipeline.snapshot()).toMatchObject({ databaseReachable: false, spoolEvents: 48 });
    // A repeat of already-stored events while down lands in the spool too.
    pipeline.emit([mk(0), mk(1)]);
    await pipeline.flush();
    p.up();
    for (let i = 50; i < 60; i++) pipeline.emit(mk(i));
    // The scheduled retry is far away; a flush tries again at once.
    (pipeline as unknown as { retryTimer: NodeJS.Timeout | null }).retryTimer = null;
    await pipeline.flush();
    expect(pipeline.snapshot()).toMatchObject({ databaseReachable: true, spoolEvents: 0 });
    await pipeline.stop();
    await viaProxy.end();
    const keys = await keysLike("outage:");
    expect(keys).toEqual(
      Array.from({ length: 60 }, (_, i) => `outage:${String(i).padStart(4, "0")}`),
    );
    expect(await readFile(spoolPath, "utf8")).toBe("");
  });

  it("replays a spool left by an earlier run, cutting a torn last line and skipping garbage", async () => {
    const spoolPath = join(dir, "c.spool");
    const lines = [0, 1, 2].map((i) => JSON.stringify(event(i, { key: `torn:${i}` })));
    await writeFile(
      spoolPath,
      `${lines[0]}\nnot json at all\n${lines[1]}\n{"key":"x"}\n${lines[2]}\n`,
    );
    await appendFile(spoolPath, JSON.stringify(event(3, { key: "torn:3" })).slice(0, 40));
    const pipeline = new EventPipeline({ pool, nodeId, spoolPath, spoolMaxBytes: 1 << 20, log });
    await pipeline.start();
    await pipeline.flush();
    await pipeline.stop();
    expect(await keysLike("torn:")).toEqual(["torn:0", "torn:1", "torn:2"]);
    expect(await readFile(spoolPath, "utf8")).toBe("");
  });

  it("bounds the spool: drops what does not fit, says so, and stores a spool_full event", async () => {
    const p = new TcpProxy("127.0.0.1", Number(new URL(database.url).port));
    await p.start();
    const viaProxy = createIngestPool(p.rewrite(database.url));
    const mk = (i: number) => event(i, { key: `full:${String(i).padStart(4, "0")}` });
    let tenLines = 0;
    for (let i = 0; i < 10; i++) tenLines += `${JSON.stringify(mk(i))}\n`.length;
    const pipeline = new EventPipeline({
      pool: viaProxy,
      nodeId,
      spoolPath: join(dir, "d.spool"),
      spoolMaxBytes: tenLines + 5,
      log,
      retryMs: 60_000,
      now: () => Date.UTC(2026, 0, 2),
    });
    await pipeline.start();
    p.down();
    for (let i = 0; i < 25; i++) pipeline.emit(mk(i));
    await pipeline.flush();
    expect(pipeline.snapshot()).toMatchObject({ spoolEvents: 10, dropped: 15 });
    p.up();
    (pipeline as unknown as { retryTimer: NodeJS.Timeout | null }).retryTimer = null;
    await pipeline.flush();
    await pipeline.stop();
    await viaProxy.end();
    await p.close();
    expect(await keysLike("full:")).toHaveLength(10);
    const { rows } = await pool.query(
      "SELECT count, severity, data FROM events WHERE idempotency_key = $1",
      [`${nodeId}:agent:spool_full:${Date.UTC(2026, 0, 2)}`],
    );
    expect(rows).toEqual([
      {
        count: "15",
        severity: "error",
        data: expect.objectContaining({ what: "spool_full", dropped: 15 }),
      },
    ]);
  });

  it("never throws from emit, and stores hostile text", async () => {
    const pipeline = new EventPipeline({
      pool,
      nodeId,
      spoolPath: join(dir, "e.spool"),
      spoolMaxBytes: 1 << 20,
      log,
    });
    await pipeline.start();
    const nasty = `bin\u0000\u0001\uFFFD${"x".repeat(5000)}`;
    pipeline.emit(event(1, { key: "nasty:1", message: nasty, rawLine: nasty, data: { s: nasty } }));
    // A row Postgres refuses for its data is rejected alone; its batch-mates are stored.
    pipeline.emit(event(2, { key: "nasty:2", severity: "bogus" as "error" }));
    pipeline.emit(event(3, { key: "nasty:3" }));
    await pipeline.flush();
    await pipeline.stop();
    expect(await keysLike("nasty:")).toEqual(["nasty:1", "nasty:3"]);
    expect(pipeline.snapshot()).toMatchObject({ rejected: 1, databaseReachable: true });
  });
});
