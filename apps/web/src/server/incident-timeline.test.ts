import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "./agents";
import { incidentMarkdown } from "./incident-export";
import { createCaller } from "./root";
import { type ContextUser, createContextInner } from "./trpc";

// The resync rate on the khugepaged page's time axis, and the self-contained incident
// export, through the tRPC callers on real Postgres, from the `resync` events the agents'
// resync controllers write (start → progress … → done).
describe("resync rate on one time axis, incident export (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const T0 = new Date("2026-06-01T12:00:00Z").getTime();
  const at = (s: number) => new Date(T0 + s * 1000);
  const now = at(60);
  const as = (user: ContextUser | null, clock = now) =>
    createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory("unused-token-0123456789", 300),
        now: () => clock,
        user,
      }),
    );
  const viewer: ContextUser = { id: "v", username: "vera", role: "viewer" };
  const operator: ContextUser = { id: "o", username: "otto", role: "operator" };

  let seq = 0;
  const resyncEvent = (
    nodeId: string,
    mirror: string,
    resyncId: string,
    s: number,
    what: string,
    data: Record<string, unknown>,
  ) => ({
    idempotencyKey: `resync:${nodeId}:${mirror}:${resyncId}:${what}:${seq++}`,
    nodeId,
    kind: "resync",
    severity: what === "progress" ? ("debug" as const) : ("info" as const),
    source: "agent",
    occurredAt: at(s),
    message: `resync of ${mirror} ${what}`,
    mirror,
    data: { what, resyncId, ...data },
  });

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "incident");
    db = createDb(database.url, { poolSize: 2 });
    for (const [id, username] of [
      ["v", "vera"],
      ["o", "otto"],
    ] as const)
      await db.user.create({
        data: { id, name: username, username, email: `${username}@users.mirrorplane.invalid` },
      });
    for (const id of ["n1", "n2"])
      await db.node.create({
        data: {
          id,
          hostname: id,
          apiUrl: "http://127.0.0.1:1",
          agentVersion: "0",
          sampleIntervalMs: 1000,
          startedAt: at(-3600),
          lastSeenAt: now,
        },
      });
    await db.event.createMany({
      data: [
        // Run r1 of LVM-x on n1: 400 regions; 10/s for 10 s, 20/s for 10 s, 10/s for 10 s.
        resyncEvent("n1", "LVM-x", "r1", 0, "start", { regions: 400 }),
        resyncEvent("n1", "LVM-x", "r1", 10, "progress", { inSync: 100, total: 400 }),
        resyncEvent("n1", "LVM-x", "r1", 20, "progress", { inSync: 300, total: 400 }),
        resyncEvent("n1", "LVM-x", "r1", 30, "done", { regions: 400, seconds: 30 }),
        // Run r2 of LVM-y on n2, at the same time: 200 regions at 10/s.
        resyncEvent("n2", "LVM-y", "r2", 0, "start", { regions: 200 }),
        resyncEvent("n2", "LVM-y", "r2", 20, "done", { regions: 200, seconds: 20 }),
        // The failure that led to r1, on the same node and mirror.
        {
          idempotencyKey: "kmsg:n1:leg-failed",
          nodeId: "n1",
          kind: "device_failure",
          severity: "error" as const,
          source: "kmsg",
          occurredAt: at(-5),
          device: "nvme0n1",
          message: "dm-raid1: leg nvme0n1 of LVM-x failed",
          mirror: "LVM-x",
        },
      ],
    });
    const action = (s: number, actor: string, action: string, target: string, params: object) =>
      db.auditAction.create({
        data: { at: at(s), actor, action, target, params, outcome: "ok" },
      });
    await action(-2, "otto", "mirrors.startResync", "mirror:LVM-x", { uuid: "LVM-x", first: 0 });
    await action(15, "otto", "khugepaged.setTunable", "node:n1:khugepaged/defrag", { value: "0" });
    await action(1, "otto", "mirrors.startResync", "mirror:LVM-y", { uuid: "LVM-y" });
    await action(-7200, "otto", "mirrors.throttleResync", "mirror:LVM-x", { regionsPerSecond: 1 });
    await action(16, "otto", "khugepaged.setTunable", "node:n2:khugepaged/defrag", { value: "1" });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  it("charts the cluster's resync rate per bucket, in regions per second", async () => {
    const t = await as(viewer).khugepaged.timeline({
      nodeId: "n1",
      windowMs: 60_000,
      buckets: 60,
    });
    expect(t.bucketMs).toBe(1000);
    expect(t.resyncScope).toBe("cluster");
    const rate = (s: number) => t.points.find((p) => p.t === at(s).getTime())!.resyncRate;
    expect([rate(0), rate(9), rate(10), rate(19), rate(20), rate(29), rate(30)]).toEqual([
      20, 20, 30, 30, 10, 10, 0,
    ]);
    // Every region recovered is on the chart exactly once.
    expect(t.points.reduce((sum, p) => sum + p.resyncRate * (t.bucketMs / 1000), 0)).toBeCloseTo(
      600,
      6,
    );
  });

  it("down-samples coarser buckets to the mean rate over each, and can keep to one node's runs", async () => {
    const coarse = await as(viewer).khugepaged.timeline({
      nodeId: "n1",
      windowMs: 60_000,
      buckets: 10,
    });
    expect(coarse.points).toHaveLength(10);
    // [6 s, 12 s): r1 4 s at 10/s + 2 s at 20/s = 80 regions, r2 60 regions → 140 / 6 s.
    expect(coarse.points[1]!.resyncRate).toBeCloseTo(140 / 6, 1);
    const sum = coarse.points.reduce((s, p) => s + p.resyncRate * 6, 0);
    expect(sum).toBeCloseTo(600, 0);
    const own = await as(viewer).khugepaged.timeline({
      nodeId: "n2",
      windowMs: 60_000,
      buckets: 60,
      resyncScope: "node",
    });
    expect(own.points.filter((p) => p.resyncRate > 0)).toHaveLength(20);
    expect(new Set(own.points.filter((p) => p.resyncRate > 0).map((p) => p.resyncRate))).toEqual(
      new Set([10]),
    );
  });

  it("exports an incident with its events, the operator actions around it, and its charts", async () => {
    const incidents = await as(viewer).events.incidents({ days: 7 });
    const incident = incidents.find((i) => i.subject === "LVM-x" && i.nodeId === "n1")!;
    expect(incident).toMatchObject({ events: 5, started: at(-5), ended: at(30) });
    // Acknowledged hours later: still part of the incident's story.
    const [failure] = await db.event.findMany({
      where: { idempotencyKey: "kmsg:n1:leg-failed" },
      select: { id: true },
    });
    await as(operator, at(3 * 3600)).events.acknowledge({
      ids: [failure!.id.toString()],
      note: "leg replaced",
    });

    const x = await as(viewer).events.incidentExport({
      from: incident.started,
      to: incident.ended,
      nodeId: incident.nodeId,
      mirror: incident.mirror!,
    });
    expect(x.incident).toMatchObject({
      subject: "LVM-x",
      subjectKind: "mirror",
      nodeId: "n1",
      events: 5,
      unacknowledged: 4,
      worst: "error",
    });
    expect(x.events.map((e) => e.kind)).toEqual([
      "device_failure",
      "resync",
      "resync",
      "resync",
      "resync",
    ]);
    // Same subject or node, in the padded window; not LVM-y's, not n2's, not two hours before.
    expect(x.operatorActions.map((a) => [a.actor, a.action, a.target])).toEqual([
      ["otto", "mirrors.startResync", "mirror:LVM-x"],
      ["otto", "khugepaged.setTunable", "node:n1:khugepaged/defrag"],
      ["otto", "events.acknowledge", `events:${failure!.id}`],
    ]);
    expect(x.operatorActions[0]).toMatchObject({
      params: { uuid: "LVM-x", first: 0 },
      outcome: "ok",
    });
    expect(x.operatorActions[2]!.params).toMatchObject({ note: "leg replaced" });
    // Charts: the mirror's own resync rate over the window padded by 10 minutes.
    expect(x.charts.resyncRateScope).toBe("mirror LVM-x");
    expect(x.charts.from).toEqual(at(-5 - 600));
    expect(x.charts.points.length).toBeLessThanOrEqual(200);
    const regions = x.charts.points.reduce(
      (s, p) => s + p.resyncRate * (x.charts.bucketMs / 1000),
      0,
    );
    expect(regions).toBeCloseTo(400, 6);
    expect(x.charts.points.reduce((s, p) => s + p.device, 0)).toBe(1);

    const md = incidentMarkdown(x, "vera", now);
    expect(md).toContain("# Incident: mirror LVM-x on n1");
    expect(md).toContain("## Operator actions");
    expect(md).toMatch(
      /\| otto \| mirrors\.startResync \| mirror:LVM-x \| `\{"uuid":"LVM-x","first":0\}` \| ok \|/,
    );
    expect(md).toContain("## Charts");
  });

  it("an incident of another subject: a device's, or the events that name no node", async () => {
    const x = await as(viewer).events.incidentExport({
      from: at(-5),
      to: at(-5),
      nodeId: "n1",
      device: "nvme0n1",
    });
    // The failure names a mirror, so it belongs to the mirror's incident, not the device's.
    expect(x.events).toEqual([]);
    const none = await as(viewer).events.incidentExport({
      from: at(0),
      to: at(30),
      nodeId: null,
      kind: "resync",
    });
    expect(none.events).toEqual([]);
    expect(none.charts.resyncRateScope).toBe("whole cluster");
  });

  it("refuses signed-out callers and incidents without exactly one subject", async () => {
    const ref = { from: at(0), to: at(30), nodeId: "n1", mirror: "LVM-x" };
    await expect(as(null).events.incidentExport(ref)).rejects.toMatchObject({
      code: "UNAUTHORIZED",
    });
    await expect(
      as(null).khugepaged.timeline({ nodeId: "n1", windowMs: 60_000 }),
    ).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(
      as(viewer).events.incidentExport({ from: at(0), to: at(30), nodeId: "n1" }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(
      as(viewer).events.incidentExport({ ...ref, device: "nvme0n1" }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(as(viewer).events.incidentExport({ ...ref, from: at(31) })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(
      as(viewer).khugepaged.timeline({ nodeId: "n1", windowMs: 60_000, buckets: 5_000 }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
  });
});
