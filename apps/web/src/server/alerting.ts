import type { Db } from "@mirrorplane/db";
import { alarmAlertNames } from "~/lib/alert-names";
import type { TAlarm } from "./alarms";

/**
 * Alerts out of the product (issue 13; Ceph: Alertmanager with silences): the mirrors'
 * alarms (alarms.ts) and unacknowledged critical events, delivered to a webhook and/or an
 * Alertmanager, except what a silence matches. Silences are rows in Postgres (who, until
 * when, why), set and expired through the `alerts` router, audited there.
 *
 * - Alertmanager (API v2, `POST <url>/api/v2/alerts`): every firing alert is re-sent each
 *   round with `endsAt` a few rounds ahead, as Prometheus does, so Alertmanager resolves it
 *   by itself if we stop; an alert that stopped firing is sent once more with `endsAt` now.
 * - Webhook: Alertmanager's webhook body (`version`, `status`, `alerts`), posted only when the
 *   set changes: an alert starts firing or resolves.
 *
 * A silenced alert is not delivered at all (we are the source; Alertmanager's own silences
 * work as usual on what we send).
 */

export interface TAlert {
  /** Stable identity: the same condition keeps its key across rounds. */
  key: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: Date;
}

export interface TSilence {
  id: string;
  alertname: string | null;
  mirror: string | null;
  nodeId: string | null;
  createdBy: string;
  reason: string;
  startsAt: Date;
  endsAt: Date;
  expiredAt: Date | null;
}

const alarmNames: Record<TAlarm["kind"], string> = alarmAlertNames;

export function alarmAlert(a: TAlarm, now: Date, dashboardUrl: string): TAlert {
  const alertname = alarmNames[a.kind];
  return {
    key: `${alertname}/${a.mirror}`,
    labels: { alertname, severity: a.severity, mirror: a.mirror, source: "mirrorplane" },
    annotations: {
      summary: `Mirror ${a.mirror}: ${a.message}`,
      dashboard: `${dashboardUrl}/mirrors/${encodeURIComponent(a.mirror)}`,
    },
    startsAt: new Date(a.since ?? now.getTime()),
  };
}

export function criticalEventAlert(
  e: {
    id: string;
    kind: string;
    nodeId: string | null;
    device: string | null;
    mirror: string | null;
    message: string;
    occurredAt: Date;
  },
  dashboardUrl: string,
): TAlert {
  return {
    key: `MirrorplaneCriticalEvent/${e.id}`,
    labels: {
      alertname: "MirrorplaneCriticalEvent",
      severity: "critical",
      kind: e.kind,
      event_id: e.id,
      source: "mirrorplane",
      ...(e.nodeId ? { node: e.nodeId } : {}),
      ...(e.device ? { device: e.device } : {}),
      ...(e.mirror ? { mirror: e.mirror } : {}),
    },
    annotations: {
      summary: e.message,
      dashboard: `${dashboardUrl}/events?kind=${encodeURIComponent(e.kind)}&severity=critical`,
    },
    startsAt: e.occurredAt,
  };
}

/** The silence that holds for `alert` now, or null. */
export function silencing(
  alert: TAlert,
  silences: readonly TSilence[],
  now: Date,
): TSilence | null {
  for (const s of silences) {
    if (s.expiredAt !== null && s.expiredAt <= now) continue;
    if (s.startsAt > now || s.endsAt <= now) continue;
    if (s.alertname !== null && s.alertname !== alert.labels.alertname) continue;
    if (s.mirror !== null && s.mirror !== alert.labels.mirror) continue;
    if (s.nodeId !== null && s.nodeId !== alert.labels.node) continue;
    return s;
  }
  return null;
}

export interface TDeliveryConfig {
  webhookUrl: string | null;
  alertmanagerUrl: string | null;
  /** How often rounds run (Alertmanager's endsAt is set a few rounds ahead). */
  intervalMs: number;
  fetch?: typeof fetch;
}

export interface TDeliveryResult {
  at: Date;
  firing: number;
  silenced: number;
  sent: { webhook: number; alertmanager: number };
  errors: string[];
}

type TWireAlert = {
  status?: "firing" | "resolved";
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
};

/** One process's delivery state: what was firing last round (for resolves and changes). */
export class AlertDelivery {
  readonly #config: TDeliveryConfig;
  #firing = new Map<string, TAlert>();
  last: TDeliveryResult | null = null;

  constructor(config: TDeliveryConfig) {
    this.#config = config;
  }

  get configured(): { webhook: boolean; alertmanager: boolean } {
    return {
      webhook: this.#config.webhookUrl !== null,
      alertmanager: this.#config.alertmanagerUrl !== null,
    };
  }

  async round(
    alerts: readonly TAlert[],
    silences: readonly TSilence[],
    now: Date,
  ): Promise<TDeliveryResult> {
    const doFetch = this.#config.fetch ?? fetch;
    const firing = new Map<string, TAlert>();
    let silenced = 0;
    for (const a of alerts) {
      if (silencing(a, silences, now)) silenced++;
      else firing.set(a.key, a);
    }
    const resolved = [...this.#firing.values()].filter((a) => !firing.has(a.key));
    const started = [...firing.values()].filter((a) => !this.#firing.has(a.key));
    const wire = (a: TAlert, endsAt: Date, status: "firing" | "resolved"): TWireAlert => ({
      status,
      labels: a.labels,
      annotations: a.annotations,
      startsAt: a.startsAt.toISOString(),
      endsAt: endsAt.toISOString(),
      ...(a.annotations.dashboard ? { generatorURL: a.annotations.dashboard } : {}),
    });
    const ahead = new Date(now.getTime() + 4 * this.#config.intervalMs);
    const result: TDeliveryResult = {
      at: now,
      firing: firing.size,
      silenced,
      sent: { webhook: 0, alertmanager: 0 },
      errors: [],
    };
    const post = async (url: string, body: unknown) => {
      const res = await doFetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    };
    if (this.#config.alertmanagerUrl) {
      const batch = [
        ...[...firing.values()].map((a) => wire(a, ahead, "firing")),
        ...resolved.map((a) => wire(a, now, "resolved")),
      ].map(({ status: _s, ...rest }) => rest);
      if (batch.length > 0) {
        try {
          await post(`${this.#config.alertmanagerUrl.replace(/\/$/, "")}/api/v2/alerts`, batch);
          result.sent.alertmanager = batch.length;
        } catch (error) {
          result.errors.push(`Alertmanager: ${(error as Error).message}`);
        }
      }
    }
    if (this.#config.webhookUrl && (started.length > 0 || resolved.length > 0)) {
      const changed = [
        ...started.map((a) => wire(a, new Date(0), "firing")),
        ...resolved.map((a) => wire(a, now, "resolved")),
      ];
      try {
        await post(this.#config.webhookUrl, {
          version: "4",
          receiver: "mirrorplane",
          status: firing.size > 0 ? "firing" : "resolved",
          groupLabels: {},
          commonLabels: { source: "mirrorplane" },
          externalURL: "",
          alerts: changed.map((a) =>
            a.status === "firing" ? { ...a, endsAt: "0001-01-01T00:00:00Z" } : a,
          ),
        });
        result.sent.webhook = changed.length;
      } catch (error) {
        result.errors.push(`webhook: ${(error as Error).message}`);
        // Not delivered: try the same change again next round.
        this.last = result;
        for (const a of resolved) firing.set(a.key, a);
        for (const a of started) firing.delete(a.key);
        this.#firing = firing;
        return result;
      }
    }
    this.#firing = firing;
    this.last = result;
    return result;
  }
}

/** Silences that are not over (for matching and for the list). */
export async function currentSilences(db: Db, now: Date): Promise<TSilence[]> {
  const rows = await db.alertSilence.findMany({
    where: { endsAt: { gt: now }, OR: [{ expiredAt: null }, { expiredAt: { gt: now } }] },
    orderBy: { endsAt: "asc" },
    select: {
      id: true,
      alertname: true,
      mirror: true,
      nodeId: true,
      createdBy: true,
      reason: true,
      startsAt: true,
      endsAt: true,
      expiredAt: true,
    },
  });
  return rows.map((r) => ({ ...r, id: r.id.toString() }));
}

/** Unacknowledged critical events of the last day, as alerts. */
export async function criticalEventAlerts(db: Db, now: Date, dashboardUrl: string) {
  const rows = await db.event.findMany({
    where: {
      severity: "critical",
      occurredAt: { gte: new Date(now.getTime() - 86_400_000) },
      OR: [{ acknowledgedAt: null }, { ackExpiresAt: { lte: now } }],
    },
    orderBy: [{ occurredAt: "desc" }, { id: "desc" }],
    take: 50,
    select: {
      id: true,
      kind: true,
      nodeId: true,
      device: true,
      mirror: true,
      message: true,
      occurredAt: true,
    },
  });
  return rows.map((r) => criticalEventAlert({ ...r, id: r.id.toString() }, dashboardUrl));
}

// One delivery per server process (server/runtime.ts installs the configured one).
const g = globalThis as unknown as { mirrorplaneAlertDelivery?: AlertDelivery };
export function installAlertDelivery(d: AlertDelivery): AlertDelivery {
  g.mirrorplaneAlertDelivery = d;
  return d;
}
export function alertDelivery(): AlertDelivery | null {
  return g.mirrorplaneAlertDelivery ?? null;
}
