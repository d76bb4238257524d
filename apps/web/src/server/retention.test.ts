import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from "vitest";
import { defaultRetentionPolicy, pruneEvents, runRetention } from "./retention";

const now = new Date("2026-06-01T00:00:00Z");
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);

describe("event retention (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "retention");
    db = createDb(database.url, { poolSize: 2 });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });
  beforeEach(async () => {
    await db.$executeRaw`TRUNCATE events, audit_actions`;
  });

  let seq = 0;
  const event = (
    key: string,
    age: number,
    more: Partial<{
      severity: "debug" | "info" | "notice" | "warning" | "error" | "critical";
      kind: string;
      mirror: string;
      acknowledgedAt: Date;
      ackExpiresAt: Date;
      data: object;
    }> = {},
  ) => ({
    idempotencyKey: `${key}-${seq++}`,
    kind: more.kind ?? "memory_failure",
    severity: more.severity ?? "info",
    source: "test",
    occurredAt: daysAgo(age),
    message: key,
    mirror: more.mirror ?? null,
    acknowledgedAt: more.acknowledgedAt ?? null,
    ackExpiresAt: more.ackExpiresAt ?? null,
    data: more.data ?? {},
  });
  const remaining = async () =>
    (await db.event.findMany({ select: { message: true }, orderBy: { id: "asc" } })).map(
      (e) => e.message,
    );

  it("deletes what is older than the retention age, keeps what operators still work on", async () => {
    await db.event.createMany({
      data: [
        event("old-debug", 100, { severity: "debug" }),
        event("old-notice", 100, { severity: "notice" }),
        event("old-error-acked", 100, { severity: "error", acknowledgedAt: daysAgo(95) }),
        event("old-error-open", 100, { severity: "error" }),
        event("old-warning-ack-lapsed", 100, {
          severity: "warning",
          acknowledgedAt: daysAgo(99),
          ackExpiresAt: daysAgo(98),
        }),
        event("old-critical-ack-still-valid", 100, {
          severity: "critical",
          acknowledgedAt: daysAgo(99),
          ackExpiresAt: new Date(now.getTime() + 86_400_000),
        }),
        event("ancient-error-open", 400, { severity: "error" }),
        event("young-debug", 10, { severity: "debug" }),
        event("young-error-acked", 10, { severity: "error", acknowledgedAt: daysAgo(9) }),
        // A mirror's current without-redundancy episode opened 120 days ago: kept.
        event("open-episode", 120, {
          kind: "redundancy",
          mirror: "LVM-a",
          severity: "notice",
          data: { what: "lost" },
        }),
        // A closed one: both go.
        event("closed-episode-lost", 130, {
          kind: "redundancy",
          mirror: "LVM-b",
          severity: "notice",
          data: { what: "lost" },
        }),
        event("closed-episode-restored", 125, {
          kind: "redundancy",
          mirror: "LVM-b",
          severity: "info",
          data: { what: "restored" },
        }),
      ],
    });
    const run = await pruneEvents(db, { ...defaultRetentionPolicy, pauseMs: 0 }, now);
    expect(run).toMatchObject({ deleted: 7, complete: true, cutoff: daysAgo(90) });
    expect(await remaining()).toEqual([
      "old-error-open",
      "old-warning-ack-lapsed",
      "young-debug",
      "young-error-acked",
      "open-episode",
    ]);
  });

  it("deletes in batches of batchSize, and a run stops at maxBatches for the next to carry on", async () => {
    await db.event.createMany({
      data: Array.from({ length: 25 }, (_, i) => event(`old-${i}`, 100 + i)),
    });
    const policy = { ...defaultRetentionPolicy, batchSize: 4, maxBatches: 3, pauseMs: 0 };
    const first = await pruneEvents(db, policy, now);
    expect(first).toMatchObject({ deleted: 12, batches: 3, complete: false });
    // Oldest first.
    const left = await remaining();
    expect(left).toHaveLength(13);
    expect(left).not.toContain("old-24");
    const second = await pruneEvents(db, { ...policy, maxBatches: 100 }, now);
    expect(second).toMatchObject({ deleted: 13, batches: 4, complete: true });
    expect(await remaining()).toEqual([]);
  });

  it("retentionDays 0 keeps everything", async () => {
    await db.event.createMany({ data: [event("old", 1000)] });
    const run = await pruneEvents(db, { ...defaultRetentionPolicy, retentionDays: 0 }, now);
    expect(run.deleted).toBe(0);
    expect(await remaining()).toEqual(["old"]);
  });

  it("each run that removes something writes an audit row with the count; every run logs a line", async () => {
    await db.event.createMany({ data: [event("a", 100), event("b", 200), event("c", 1)] });
    const lines: string[] = [];
    await runRetention(db, { ...defaultRetentionPolicy, pauseMs: 0 }, now, (l) => lines.push(l));
    await runRetention(db, { ...defaultRetentionPolicy, pauseMs: 0 }, now, (l) => lines.push(l));
    expect(lines.map((l) => JSON.parse(l).deleted)).toEqual([2, 0]);
    const audit = await db.auditAction.findMany({
      select: {
        actor: true,
        action: true,
        target: true,
        outcome: true,
        detail: true,
        params: true,
      },
    });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: "system",
      action: "events.retention",
      target: "events",
      outcome: "ok",
      params: { retentionDays: 90, openMaxDays: 365, deleted: 2 },
    });
    expect(audit[0]!.detail).toMatch(/^deleted 2 events older than 2026-03-03T00:00:00.000Z/);
  });
});
