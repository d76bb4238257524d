import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "./agents";
import {
  AlertDelivery,
  alarmAlert,
  currentSilences,
  installAlertDelivery,
  silencing,
  type TSilence,
} from "./alerting";
import { createCaller } from "./root";
import { type ContextUser, createContextInner } from "./trpc";

// Alert delivery to a real HTTP receiver (standing in for a webhook and an Alertmanager),
// and silences kept in real Postgres through the router.

const t0 = new Date("2026-12-03T08:00:00Z");
const lost = alarmAlert(
  {
    kind: "without-redundancy",
    severity: "critical",
    mirror: "LVM-a",
    since: t0.getTime() - 60_000,
    message: "resync r-1 cancelled: 12 regions without redundancy",
  },
  t0,
  "http://dash.example",
);

describe("alert delivery (a real HTTP receiver)", () => {
  let server: Server;
  let base = "";
  const received: Array<{ path: string; body: unknown }> = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => {
        body += c;
      });
      req.on("end", () => {
        received.push({ path: req.url ?? "", body: JSON.parse(body) });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("fires, re-sends to Alertmanager each round, tells the webhook only of changes, resolves", async () => {
    received.length = 0;
    const d = new AlertDelivery({
      webhookUrl: `${base}/hook`,
      alertmanagerUrl: base,
      intervalMs: 15_000,
    });
    const first = await d.round([lost], [], t0);
    expect(first).toMatchObject({ firing: 1, silenced: 0, sent: { webhook: 1, alertmanager: 1 } });
    const am = received.find((r) => r.path === "/api/v2/alerts")!.body as Array<{
      labels: Record<string, string>;
      endsAt: string;
      annotations: Record<string, string>;
    }>;
    expect(am[0]!.labels).toEqual({
      alertname: "MirrorWithoutRedundancy",
      severity: "critical",
      mirror: "LVM-a",
      source: "mirrorplane",
    });
    // Alertmanager resolves it by itself if we stop: endsAt four rounds ahead.
    expect(am[0]!.endsAt).toBe(new Date(t0.getTime() + 60_000).toISOString());
    expect(am[0]!.annotations.dashboard).toBe("http://dash.example/mirrors/LVM-a");
    const hook = received.find((r) => r.path === "/hook")!.body as {
      status: string;
      alerts: Array<{ status: string }>;
    };
    expect(hook.status).toBe("firing");
    expect(hook.alerts.map((a) => a.status)).toEqual(["firing"]);

    received.length = 0;
    await d.round([lost], [], new Date(t0.getTime() + 15_000));
    expect(received.map((r) => r.path)).toEqual(["/api/v2/alerts"]);

    received.length = 0;
    const later = new Date(t0.getTime() + 30_000);
    await d.round([], [], later);
    const resolvedAm = received.find((r) => r.path === "/api/v2/alerts")!.body as Array<{
      endsAt: string;
    }>;
    expect(resolvedAm[0]!.endsAt).toBe(later.toISOString());
    const resolvedHook = received.find((r) => r.path === "/hook")!.body as {
      status: string;
      alerts: Array<{ status: string }>;
    };
    expect(resolvedHook.status).toBe("resolved");
    expect(resolvedHook.alerts.map((a) => a.status)).toEqual(["resolved"]);
  });

  it("a silence holds the alert back; an unreachable receiver is an error, retried", async () => {
    received.length = 0;
    const silence: TSilence = {
      id: "1",
      alertname: "MirrorWithoutRedundancy",
      mirror: "LVM-a",
      nodeId: null,
      createdBy: "otto",
      reason: "replacing the disk",
      startsAt: new Date(t0.getTime() - 1),
      endsAt: new Date(t0.getTime() + 3_600_000),
      expiredAt: null,
    };
    expect(silencing(lost, [silence], t0)).toBe(silence);
    expect(silencing(lost, [{ ...silence, mirror: "LVM-b" }], t0)).toBeNull();
    expect(silencing(lost, [{ ...silence, expiredAt: t0 }], t0)).toBeNull();
    const d = new AlertDelivery({
      webhookUrl: `${base}/hook`,
      alertmanagerUrl: null,
      intervalMs: 15_000,
    });
    expect(await d.round([lost], [silence], t0)).toMatchObject({ firing: 0, silenced: 1 });
    expect(received).toEqual([]);

    const down = new AlertDelivery({
      webhookUrl: "http://127.0.0.1:1/hook",
      alertmanagerUrl: null,
      intervalMs: 15_000,
    });
    const r = await down.round([lost], [], t0);
    expect(r.errors[0]).toMatch(/^webhook: /);
    // Not delivered, so the next round tries the same change again.
    const again = await down.round([lost], [], new Date(t0.getTime() + 15_000));
    expect(again.errors).toHaveLength(1);
  });
});

describe("silences through the router (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const as = (user: ContextUser) =>
    createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory("alerts-test-token-0123456789"),
        now: () => t0,
        user,
      }),
    );
  const operator: ContextUser = { id: "o", username: "otto", role: "operator" };
  const viewer: ContextUser = { id: "v", username: "vera", role: "viewer" };
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "alerts");
    db = createDb(database.url, { poolSize: 2 });
    installAlertDelivery(
      new AlertDelivery({
        webhookUrl: "http://x.invalid/h",
        alertmanagerUrl: null,
        intervalMs: 15_000,
      }),
    );
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  it("an operator silences with a reason and expires it; both audited; a viewer is refused", async () => {
    await expect(
      as(operator).alerts.silence({ mirror: "LVM-a", hours: 2, reason: "" }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    const s = await as(operator).alerts.silence({
      alertname: "MirrorWithoutRedundancy",
      mirror: "LVM-a",
      hours: 2,
      reason: "replacing the disk",
    });
    expect(s.endsAt).toEqual(new Date(t0.getTime() + 7_200_000));
    const status = await as(viewer).alerts.status();
    expect(status.configured).toEqual({ webhook: true, alertmanager: false });
    expect(status.silences).toMatchObject([
      { id: s.id, mirror: "LVM-a", createdBy: "otto", reason: "replacing the disk" },
    ]);
    await expect(as(viewer).alerts.expire({ id: s.id })).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await as(operator).alerts.expire({ id: s.id });
    expect(await currentSilences(db, new Date(t0.getTime() + 1))).toEqual([]);
    await expect(as(operator).alerts.expire({ id: s.id })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    const trail = (await as(viewer).audit.list({ limit: 10 })).items.map((a) => [
      a.action,
      a.outcome,
    ]);
    expect(trail).toEqual([
      ["alerts.expire", "refused"],
      ["alerts.expire", "ok"],
      ["alerts.expire", "refused"],
      ["alerts.silence", "ok"],
      ["alerts.silence", "refused"],
    ]);
  });
});
