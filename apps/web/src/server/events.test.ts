import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "./agents";
import { createCaller } from "./root";
import { type ContextUser, createContextInner } from "./trpc";

describe("events API (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const agents = createAgentDirectory("unused-token-0123456789");
  const as = (user: ContextUser | null) =>
    createCaller(
      createContextInner({ db, agents, now: () => new Date("2026-06-01T00:00:00Z"), user }),
    );
  let viewer: ReturnType<typeof as>;
  let operator: ReturnType<typeof as>;
  const base = new Date("2026-05-31T00:00:00Z").getTime();

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "events");
    db = createDb(database.url, { poolSize: 2 });
    for (const [id, username] of [
      ["v", "vera"],
      ["o", "otto"],
    ]) {
      await db.user.create({
        data: {
          id: id!,
          name: username!,
          username,
          email: `${username}@users.mirrorplane.invalid`,
        },
      });
    }
    viewer = as({ id: "v", username: "vera", role: "viewer" });
    operator = as({ id: "o", username: "otto", role: "operator" });
    // 250 events; every 5 share one timestamp, so the keyset must break ties by id.
    await db.event.createMany({
      data: Array.from({ length: 250 }, (_, i) => ({
        idempotencyKey: `k${i}`,
        kind: i % 2 ? "memory_failure" : "device_failure",
        severity: i % 10 === 0 ? ("error" as const) : ("warning" as const),
        source: "kmsg",
        occurredAt: new Date(base + Math.floor(i / 5) * 1000),
        device: i % 3 === 0 ? "nvme0n1" : "pmem0",
        message: `event ${i}`,
      })),
    });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  it("pages through everything newest first, each row once, with ties broken by id", async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await viewer.events.list({ limit: 37, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((e) => e.message));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor);
    expect(pages).toBe(Math.ceil(250 / 37));
    expect(new Set(seen).size).toBe(250);
    expect(seen[0]).toBe("event 249");
    expect(seen.at(-1)).toBe("event 0");
  });

  it("filters by kind, severity, device and text", async () => {
    const errors = await viewer.events.list({ severity: ["error"], limit: 500 });
    expect(errors.items).toHaveLength(25);
    const pmemMemory = await viewer.events.list({
      kind: "memory_failure",
      device: "pmem0",
      limit: 500,
    });
    expect(pmemMemory.items.every((e) => e.kind === "memory_failure" && e.device === "pmem0")).toBe(
      true,
    );
    expect(pmemMemory.items.length).toBe(
      Array.from({ length: 250 }, (_, i) => i).filter((i) => i % 2 && i % 3).length,
    );
    expect(
      (await viewer.events.list({ text: "EVENT 24", limit: 500 })).items
        .map((e) => e.message)
        .sort(),
    ).toEqual(
      [
        "event 24",
        "event 240",
        "event 241",
        "event 242",
        "event 243",
        "event 244",
        "event 245",
        "event 246",
        "event 247",
        "event 248",
        "event 249",
      ].sort(),
    );
    const facets = await viewer.events.facets();
    expect(facets.kinds).toEqual(["device_failure", "memory_failure"]);
    expect(facets.devices).toEqual(["nvme0n1", "pmem0"]);
  });

  it("lets operators acknowledge, refuses viewers, and audits it", async () => {
    const [first] = (await viewer.events.list({ limit: 1 })).items;
    await expect(viewer.events.acknowledge({ ids: [first!.id] })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    expect(await operator.events.acknowledge({ ids: [first!.id] })).toEqual({ count: 1 });
    const after = (await viewer.events.list({ limit: 1 })).items[0]!;
    expect(after.acknowledgedBy).toBe("otto");
    expect((await viewer.events.list({ acknowledged: false, limit: 500 })).items).toHaveLength(249);
    const trail = await viewer.audit.list({ limit: 1 });
    expect(trail.items[0]).toMatchObject({
      action: "events.acknowledge",
      actor: "otto",
      outcome: "ok",
    });
    await expect(operator.events.acknowledge({ ids: ["999999999"] })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("keeps a note with an acknowledgement, and an expired one no longer silences the event", async () => {
    const items = (await viewer.events.list({ limit: 3 })).items;
    await operator.events.acknowledge({
      ids: [items[1]!.id],
      note: "known flaky cable",
      expiresInHours: 1,
    });
    const acked = (await viewer.events.list({ limit: 3 })).items[1]!;
    expect(acked).toMatchObject({ ackNote: "known flaky cable", acknowledgedBy: "otto" });
    expect(acked.ackExpiresAt!.getTime()).toBe(new Date("2026-06-01T01:00:00Z").getTime());
    // The test clock says 2026-06-01, the wall clock is later: that acknowledgement has lapsed.
    const open = await viewer.events.list({ acknowledged: false, limit: 500 });
    expect(open.items.some((e) => e.id === acked.id)).toBe(true);
  });

  it("groups related events into incidents per node and subject", async () => {
    const incidents = await viewer.events.incidents({ days: 3, gapMinutes: 10 });
    // Two devices; each device's events are 1 s apart (well within 10 min): one incident each.
    expect(incidents.map((i) => [i.subject, i.events]).sort()).toEqual([
      ["nvme0n1", Array.from({ length: 250 }, (_, i) => i).filter((i) => i % 3 === 0).length],
      ["pmem0", Array.from({ length: 250 }, (_, i) => i).filter((i) => i % 3 !== 0).length],
    ]);
    expect(incidents.every((i) => i.worst === "error")).toBe(true);
    expect(incidents.find((i) => i.subject === "pmem0")!.kinds).toEqual([
      "device_failure",
      "memory_failure",
    ]);
    // A 1-minute gap still joins events 1 s apart.
    expect((await viewer.events.incidents({ days: 3, gapMinutes: 1 })).length).toBe(2);
  });

  it("rejects malformed cursors and filters", async () => {
    await expect(viewer.events.list({ cursor: "yesterday" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(viewer.events.list({ severity: ["fatal" as never] })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(viewer.events.list({ limit: 100_000 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(as(null).events.list({})).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });
});
