import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "~/server/agents";
import { AlertDelivery } from "~/server/alerting";
import { startBackground } from "~/server/live/background";
import { installMirrorWatch, MirrorWatch } from "~/server/mirror-watch";
import { defaultRetentionPolicy } from "~/server/retention";
import { createCaller } from "~/server/root";
import { type ContextUser, createContextInner } from "~/server/trpc";

// The overview's progress-aware alarms against the real demo cluster `npm start` runs
// (`mirrorplane-sim demo`: three simulated agents and kernels, mirrors under write load,
// LVM-sim-db-primary in its initial sync for a few minutes), through the tRPC caller on
// real Postgres.
const repo = join(import.meta.dirname, "../..");
const token = "overview-alarms-token-0123456789";

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>) {
  for (let i = 0; i < 600; i++) {
    const v = await probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} never happened`);
}

describe("overview alarms with the demo cluster (real agents, real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let dir: string;
  let demo: ChildProcess | undefined;
  const agents = createAgentDirectory(token, 3_000);
  const as = (user: ContextUser | null) =>
    createCaller(createContextInner({ db, agents, now: () => new Date(), user }));
  const viewer: ContextUser = { id: "v", username: "vera", role: "viewer" };
  const operator: ContextUser = { id: "o", username: "otto", role: "operator" };

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "overview");
    db = createDb(database.url, { poolSize: 4 });
    await db.user.create({
      data: { id: "o", name: "otto", username: "otto", email: "otto@users.mirrorplane.invalid" },
    });
    dir = await mkdtemp(join(tmpdir(), "mp-overview-"));
    await writeFile(join(dir, "token"), `${token}\n`);
    demo = spawn(
      process.execPath,
      [
        join(repo, "packages/simulator/bin/mirrorplane-sim.js"),
        "demo",
        ...["--data-dir", join(dir, "demo"), "--token-file", join(dir, "token")],
        ...["--port", "0", "--nats", "off", "--resync-every-ms", "0"],
        // One registration at start; no sample is due during the test, so the node stays fresh.
        ...["--sample-interval-ms", "3600000", "--database-url", database.url],
      ],
      { cwd: repo, stdio: "ignore" },
    );
    // Each of its three members registers as a node of its own.
    await until("the demo cluster's three members registered", async () =>
      (await db.node.count({ where: { id: { in: ["demo-1", "demo-2", "demo-3"] } } })) === 3
        ? true
        : null,
    );
  }, 60_000);
  afterAll(async () => {
    if (demo && demo.exitCode === null) {
      const exited = new Promise((r) => demo!.once("exit", r));
      demo.kill("SIGTERM");
      await exited;
    }
    await db.$disconnect();
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  it("a mirror recovering on track raises no alarm, and its time without redundancy survives a restart", async () => {
    // Any exposure at all would be over this limit: only "on track" keeps it quiet.
    installMirrorWatch(new MirrorWatch({ withoutRedundancyMs: 1 }));
    const first = await as(viewer).overview.summary();
    const primary = first.mirrors.list.find((m) => m.uuid === "LVM-sim-db-primary")!;
    expect(primary.percent).toBeLessThan(100);
    expect(primary.outOfSyncSince).toBeInstanceOf(Date);
    expect(primary.outOfSyncSinceBasis).toBe("first-observed");
    // Look again once it has gained regions: recovering, on track, no alarm.
    const second = await until("a second look sees it recovering", async () => {
      const s = await as(viewer).overview.summary();
      const m = s.mirrors.list.find((x) => x.uuid === "LVM-sim-db-primary");
      return m?.trend === "recovering" ? s : null;
    });
    const recovering = second.mirrors.list.find((m) => m.uuid === "LVM-sim-db-primary")!;
    expect(recovering.onTrack).toBe(true);
    expect(second.alarms).toEqual([]);
    expect(second.health).toBe("ok");
    expect(recovering.outOfSyncSince).toEqual(primary.outOfSyncSince);

    // A restart of the web app: a fresh watch, nothing in memory.
    installMirrorWatch(new MirrorWatch({ withoutRedundancyMs: 1 }));
    const restarted = await as(viewer).overview.summary();
    expect(
      restarted.mirrors.list.find((m) => m.uuid === "LVM-sim-db-primary")!.outOfSyncSince,
    ).toEqual(primary.outOfSyncSince);
    expect(
      await db.event.count({ where: { kind: "redundancy", mirror: "LVM-sim-db-primary" } }),
    ).toBe(1);
  });

  it("the background watch dates an operator's resync episode from the resync's start", async () => {
    const watch = installMirrorWatch(new MirrorWatch());
    const started = await as(operator).mirrors.startResync({
      uuid: "LVM-sim-logs",
      first: 0,
      last: 2047,
      throttle: 50,
    });
    const startEvent = await until("the resync's start event is stored", () =>
      db.event.findFirst({
        where: {
          kind: "resync",
          mirror: "LVM-sim-logs",
          data: { path: ["what"], equals: "start" },
        },
        select: { occurredAt: true },
      }),
    );
    const background = startBackground({
      db,
      agents,
      watch,
      retention: defaultRetentionPolicy,
      watchIntervalMs: 3_600_000,
      retentionFirstMs: 3_600_000,
    });
    try {
      await background.watchOnce();
    } finally {
      background.stop();
    }
    const lost = await db.event.findFirst({
      where: { kind: "redundancy", mirror: "LVM-sim-logs" },
      select: { occurredAt: true, data: true, nodeId: true },
    });
    expect(lost).toMatchObject({
      occurredAt: startEvent.occurredAt,
      nodeId: "demo-1",
      data: { what: "lost", basis: "resync-start", resyncId: started.id },
    });
    const s = await as(viewer).overview.summary();
    expect(s.mirrors.list.find((m) => m.uuid === "LVM-sim-logs")).toMatchObject({
      resyncRunning: true,
      outOfSyncSince: startEvent.occurredAt,
      outOfSyncSinceBasis: "resync-start",
    });
    await as(operator).mirrors.cancel({ uuid: "LVM-sim-logs" });
  });

  it("after a cancel: critical at once, no projected finish, the reason listed, and a plan of only what is out of sync", async () => {
    installMirrorWatch(new MirrorWatch());
    // (The test above cancelled its throttled resync of LVM-sim-logs.)
    const s = await as(viewer).overview.summary();
    const logs = s.mirrors.list.find((m) => m.uuid === "LVM-sim-logs")!;
    expect(logs.percent).toBeLessThan(100);
    expect(logs.redundancyLost).toMatchObject({ reason: "cancelled" });
    expect(logs.redundancyLost!.regions).toBeGreaterThan(0);
    expect(logs.redundancyLost!.bytes).toBe(logs.redundancyLost!.regions * 4096);
    expect(logs.projectedFinishAt).toBeNull();
    expect(logs.onTrack).toBe(false);
    const alarm = s.alarms.find((a) => a.mirror === "LVM-sim-logs")!;
    expect(alarm).toMatchObject({ kind: "without-redundancy", severity: "critical" });
    expect(alarm.message).toMatch(/cancelled: [\d,]+ regions \([\d.]+ [KM]iB\) without redundancy/);
    expect(s.health).toBe("critical");
    expect(s.reasons[0]).toMatchObject({
      severity: "critical",
      href: "/mirrors/LVM-sim-logs",
    });
    expect(s.reasons[0]!.text).toContain("Mirror LVM-sim-logs: resync");

    const detail = await as(viewer).mirrors.detail({ uuid: "LVM-sim-logs" });
    expect(detail.redundancy.stopped).toMatchObject({ reason: "cancelled" });
    expect(detail.redundancy.outOfSync).toBe(detail.regionCount - detail.inSync);
    const plan = await as(viewer).mirrors.plan({ uuid: "LVM-sim-logs", outOfSyncOnly: true });
    expect(plan.outOfSyncOnly).toBe(true);
    // The smallest range holding what is out of sync: no wider than the cancelled run.
    expect(plan.first).toBeGreaterThanOrEqual(0);
    expect(plan.last).toBeLessThanOrEqual(2047);
    expect(plan.regions).toBeGreaterThanOrEqual(detail.redundancy.outOfSync);
    expect(plan.unprotectedDuring.exact).toBe(true);
    expect(plan.unprotectedDuring.regions).toBe(plan.regions);

    // A viewer's cancel is refused by the role check, and that refusal is in the audit log.
    await expect(as(viewer).mirrors.cancel({ uuid: "LVM-sim-logs" })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    const refused = await db.auditAction.findFirst({
      where: { action: "mirrors.cancel", actor: "vera" },
      select: { outcome: true, target: true, detail: true },
    });
    expect(refused).toEqual({
      outcome: "refused",
      target: "mirror:LVM-sim-logs",
      detail: "Needs the operator role; you are viewer.",
    });

    // The background round delivers it to a webhook (a real HTTP receiver), unless silenced.
    const posts: Array<{ alerts: Array<{ labels: Record<string, string>; status: string }> }> = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        posts.push(JSON.parse(body));
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const background = startBackground({
      db,
      agents,
      watch: installMirrorWatch(new MirrorWatch()),
      retention: defaultRetentionPolicy,
      watchIntervalMs: 3_600_000,
      retentionFirstMs: 3_600_000,
      delivery: {
        delivery: new AlertDelivery({
          webhookUrl: hook,
          alertmanagerUrl: null,
          intervalMs: 15_000,
        }),
        dashboardUrl: "http://dash.example",
      },
    });
    try {
      await background.watchOnce();
    } finally {
      background.stop();
      await new Promise<void>((r) => receiver.close(() => r()));
    }
    const delivered = posts.flatMap((p) => p.alerts);
    expect(delivered).toContainEqual(
      expect.objectContaining({
        status: "firing",
        labels: expect.objectContaining({
          alertname: "MirrorWithoutRedundancy",
          mirror: "LVM-sim-logs",
          severity: "critical",
        }),
      }),
    );

    // The operator resyncs only what is out of sync: the mirror is recovering again.
    await as(operator).mirrors.startResync({
      uuid: "LVM-sim-logs",
      first: plan.first,
      last: plan.last,
    });
    const after = await as(viewer).overview.summary();
    expect(after.mirrors.list.find((m) => m.uuid === "LVM-sim-logs")!.redundancyLost).toBeNull();
    expect(after.alarms.filter((a) => a.mirror === "LVM-sim-logs")).toEqual([]);
  });

  it("refuses signed-out callers", async () => {
    await expect(as(null).overview.summary()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });
});
