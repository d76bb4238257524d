import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { MirrorWatch, type TMirrorObservation } from "./mirror-watch";

// Time without redundancy is kept in Postgres as `redundancy` events, so it survives a
// restart of the web app (a new MirrorWatch with an empty memory) and is shared by every
// web process.
describe("mirror watch: time without redundancy (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const t0 = new Date("2026-06-01T10:00:00Z").getTime();
  const at = (s: number) => new Date(t0 + s * 1000);
  const mirror = (uuid: string, inSync: number, resyncId: string | null = null) =>
    ({ uuid, inSync, regionCount: 100, resyncId, nodeId: "n1" }) satisfies TMirrorObservation;
  const redundancyEvents = (uuid: string) =>
    db.event.findMany({
      where: { kind: "redundancy", mirror: uuid },
      orderBy: { id: "asc" },
      select: { occurredAt: true, severity: true, nodeId: true, data: true, message: true },
    });

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "mirrorwatch");
    db = createDb(database.url, { poolSize: 4 });
    await db.node.create({
      data: {
        id: "n1",
        hostname: "n1",
        apiUrl: "http://127.0.0.1:1",
        agentVersion: "0",
        sampleIntervalMs: 1000,
        startedAt: at(0),
        lastSeenAt: at(0),
      },
    });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  it("opens an episode at the first look out of sync, keeps it, and it survives a restart", async () => {
    const watch = new MirrorWatch();
    const first = await watch.observe(db, [mirror("LVM-a", 40), mirror("LVM-in", 100)], at(0));
    expect(first.get("LVM-a")).toEqual({ since: at(0), basis: "first-observed" });
    expect(first.has("LVM-in")).toBe(false);
    const later = await watch.observe(db, [mirror("LVM-a", 60)], at(600));
    expect(later.get("LVM-a")).toEqual({ since: at(0), basis: "first-observed" });
    // A restart: a fresh watch knows nothing in memory, Postgres still says since when.
    const restarted = new MirrorWatch();
    const after = await restarted.observe(db, [mirror("LVM-a", 70)], at(900));
    expect(after.get("LVM-a")).toEqual({ since: at(0), basis: "first-observed" });
    expect(restarted.history("LVM-a")).toHaveLength(1);
    const events = await redundancyEvents("LVM-a");
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      occurredAt: at(0),
      severity: "notice",
      nodeId: "n1",
      data: { what: "lost", basis: "first-observed", inSync: 40, regionCount: 100 },
    });
    expect(await redundancyEvents("LVM-in")).toEqual([]);
  });

  it("closes the episode when the mirror is seen in sync, and the next one starts after it", async () => {
    const watch = new MirrorWatch();
    await watch.observe(db, [mirror("LVM-b", 10)], at(0));
    expect((await watch.observe(db, [mirror("LVM-b", 100)], at(120))).has("LVM-b")).toBe(false);
    // Seen in sync again: nothing more to record.
    await watch.observe(db, [mirror("LVM-b", 100)], at(130));
    const closed = await redundancyEvents("LVM-b");
    expect(closed.map((e) => (e.data as { what: string }).what)).toEqual(["lost", "restored"]);
    expect(closed[1]).toMatchObject({
      occurredAt: at(120),
      severity: "info",
      data: { what: "restored", seconds: 120, since: at(0).toISOString() },
    });
    expect(closed[1]!.message).toBe("LVM-b has redundancy again, after 2 min without");
    const again = await watch.observe(db, [mirror("LVM-b", 99)], at(300));
    expect(again.get("LVM-b")).toEqual({ since: at(300), basis: "first-observed" });
  });

  it("dates an episode from the start of the running resync (the resync cleared the range's sync bits)", async () => {
    await db.event.create({
      data: {
        idempotencyKey: "resync:n1:LVM-c:r1:start",
        nodeId: "n1",
        kind: "resync",
        severity: "info",
        source: "agent",
        occurredAt: at(-300),
        message: "resync of LVM-c regions 0–99 started",
        mirror: "LVM-c",
        data: { what: "start", resyncId: "r1" },
      },
    });
    const watch = new MirrorWatch();
    const seen = await watch.observe(db, [mirror("LVM-c", 5, "r1")], at(0));
    expect(seen.get("LVM-c")).toEqual({ since: at(-300), basis: "resync-start" });
  });

  it("two web processes looking at once open one episode", async () => {
    const [a, b] = await Promise.all([
      new MirrorWatch().observe(db, [mirror("LVM-d", 1)], at(0)),
      new MirrorWatch().observe(db, [mirror("LVM-d", 1)], at(1)),
    ]);
    expect(a.get("LVM-d")).toEqual(b.get("LVM-d"));
    expect(await redundancyEvents("LVM-d")).toHaveLength(1);
  });

  it("keeps observations at least two seconds apart and only the last half hour", async () => {
    const watch = new MirrorWatch();
    await watch.observe(db, [mirror("LVM-e", 1)], at(0));
    await watch.observe(db, [mirror("LVM-e", 2)], at(1));
    await watch.observe(db, [mirror("LVM-e", 3)], at(5));
    expect(watch.history("LVM-e").map((p) => p.inSync)).toEqual([1, 3]);
    await watch.observe(db, [mirror("LVM-e", 4)], at(1805));
    expect(watch.history("LVM-e").map((p) => p.inSync)).toEqual([3, 4]);
  });
});
