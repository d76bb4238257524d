import { assessMirror, rollUpAlarms, type TAlarm } from "../alarms";
import { eventMessage } from "../event-rows";
import { freshness, type TFreshness } from "../freshness";
import { mirrorWatch, type TExposure } from "../mirror-watch";
import type { ContextInner } from "../trpc";
import { collect, latestProgress, regionBytes } from "./fleet";
import { observations, observeTrend, recoveryStoppedOf } from "./sync-observer";

const worstFirst: TFreshness[] = ["unknown", "late", "fresh"];
const severities = ["critical", "error", "warning", "notice", "info", "debug"] as const;

export type THealth = "ok" | "attention" | "critical" | "unknown";

/** One reason the cluster is not healthy, with where to look (overview's status). */
export interface THealthReason {
  severity: "critical" | "warning" | "unknown";
  text: string;
  href: string;
}

const reasonRank = { critical: 0, unknown: 1, warning: 2 } as const;

/** Cluster health rolled up worst-first (DASHBOARD.md: stale is never shown as healthy). */
export async function clusterSummary(ctx: ContextInner) {
  const now = ctx.now();
  const dayAgo = new Date(now.getTime() - 86_400_000);
  const [nodes, bySeverity, recentEvents, recentAudit, mirrorState] = await Promise.all([
    ctx.db.node.findMany({
      select: { id: true, hostname: true, lastSeenAt: true, sampleIntervalMs: true },
    }),
    ctx.db.event.groupBy({
      by: ["severity"],
      where: { occurredAt: { gte: dayAgo } },
      _count: { _all: true },
    }),
    ctx.db.event.findMany({
      orderBy: [{ occurredAt: "desc" }, { id: "desc" }],
      take: 10,
      select: {
        id: true,
        occurredAt: true,
        kind: true,
        severity: true,
        nodeId: true,
        device: true,
        message: true,
        data: true,
      },
    }),
    ctx.db.auditAction.findMany({
      orderBy: { id: "desc" },
      take: 5,
      select: { id: true, at: true, actor: true, action: true, target: true, outcome: true },
    }),
    collect(ctx).catch(() => null),
  ]);
  const nodeStates = nodes
    .map((n) => ({
      id: n.id,
      hostname: n.hostname,
      lastSeenAt: n.lastSeenAt,
      freshness: freshness(n.lastSeenAt, n.sampleIntervalMs, now),
    }))
    .sort(
      (a, b) =>
        worstFirst.indexOf(a.freshness) - worstFirst.indexOf(b.freshness) ||
        a.id.localeCompare(b.id),
    );
  const counts = Object.fromEntries(severities.map((s) => [s, 0])) as Record<
    (typeof severities)[number],
    number
  >;
  for (const row of bySeverity) counts[row.severity] = row._count._all;
  const health: THealth =
    nodes.length === 0 || nodeStates.some((n) => n.freshness === "unknown")
      ? "unknown"
      : nodeStates.some((n) => n.freshness === "late") || counts.critical + counts.error > 0
        ? "attention"
        : "ok";
  // Progress-aware alarms (alarms.ts): a recovering mirror on track raises none.
  const watch = mirrorWatch();
  const observed = mirrorState ? observations(mirrorState.mirrors.values()) : [];
  let exposures = new Map<string, TExposure>();
  let exposureError: string | null = null;
  try {
    exposures = await watch.observe(ctx.db, observed, now);
  } catch (error) {
    // The alarms still come from what the agents say; only the durations are missing.
    exposureError = error instanceof Error ? error.message : String(error);
  }
  const alarms: TAlarm[] = [];
  // Out of sync with no resync running: was the last one cancelled or failed?
  const stopped = new Map(
    await Promise.all(
      [...(mirrorState?.mirrors.values() ?? [])]
        .filter((m) => m.inSync < m.regionCount && m.resyncId === null && m.holders[0])
        .map(async (m) => [m.uuid, recoveryStoppedOf(m, await latestProgress(m))] as const),
    ),
  );
  const mirrors = mirrorState
    ? [...mirrorState.mirrors.values()].map((m) => {
        const trend = observeTrend(m.uuid, m.inSync, m.regionCount, now.getTime());
        const exposure = exposures.get(m.uuid) ?? null;
        const recoveryStopped = stopped.get(m.uuid) ?? null;
        const bytesPerRegion = regionBytes(m);
        const assessment = assessMirror(
          {
            uuid: m.uuid,
            trend,
            inSync: m.inSync,
            regionCount: m.regionCount,
            history: watch.history(m.uuid),
            outOfSyncSince: exposure ? exposure.since.getTime() : null,
            now: now.getTime(),
            recoveryStopped,
            regionBytes: bytesPerRegion,
          },
          watch.config,
        );
        alarms.push(...assessment.alarms);
        return {
          uuid: m.uuid,
          percent: m.regionCount ? (100 * m.inSync) / m.regionCount : 100,
          trend,
          resyncRunning: m.resyncId !== null,
          onTrack: assessment.onTrack,
          outOfSyncSince: exposure?.since ?? null,
          /** "resync-start": from the running resync's start; else when first seen out of sync. */
          outOfSyncSinceBasis: exposure?.basis ?? null,
          projectedFinishAt:
            assessment.projectedFinishAt === null ? null : new Date(assessment.projectedFinishAt),
          /** Out of sync and nothing recovering it (a cancelled or failed resync). */
          redundancyLost: recoveryStopped
            ? {
                ...recoveryStopped,
                regions: m.regionCount - m.inSync,
                bytes: bytesPerRegion === null ? null : (m.regionCount - m.inSync) * bytesPerRegion,
              }
            : null,
        };
      })
    : [];
  const stalled = mirrors.filter((m) => m.trend === "stalled");
  const rolledUp = rollUpAlarms(alarms);
  const finalHealth: THealth = health === "ok" && rolledUp.length > 0 ? "attention" : health;
  // The reasons behind the status, each linking to its cause (worst first).
  const reasons: THealthReason[] = [];
  if (nodes.length === 0)
    reasons.push({ severity: "unknown", text: "No agent has reported yet.", href: "/nodes" });
  for (const n of nodeStates) {
    const seen = n.lastSeenAt ? ` (last report ${formatSecondsAgo(now, n.lastSeenAt)})` : "";
    if (n.freshness === "unknown")
      reasons.push({
        severity: "unknown",
        text: `Node ${n.id} has missed three reports${seen}: its state is unknown.`,
        href: "/nodes",
      });
    else if (n.freshness === "late")
      reasons.push({
        severity: "warning",
        text: `Node ${n.id} is late${seen}.`,
        href: "/nodes",
      });
  }
  for (const u of mirrorState?.unreachable ?? [])
    if (!nodeStates.some((n) => n.id === u.nodeId && n.freshness === "unknown"))
      reasons.push({
        severity: "warning",
        text: `Node ${u.nodeId}'s agent cannot be asked for its mirrors: ${u.error}.`,
        href: "/nodes",
      });
  if (!mirrorState)
    reasons.push({
      severity: "unknown",
      text: "The mirrors' state could not be collected from the agents.",
      href: "/mirrors",
    });
  for (const a of rolledUp)
    reasons.push({
      severity: a.severity,
      text: `Mirror ${a.mirror}: ${a.message}.`,
      href: `/mirrors/${encodeURIComponent(a.mirror)}`,
    });
  for (const sev of ["critical", "error"] as const)
    if (counts[sev] > 0)
      reasons.push({
        severity: "warning",
        text: `${counts[sev].toLocaleString("en-US")} ${sev} event${counts[sev] === 1 ? "" : "s"} in the last 24 h.`,
        href: `/events?severity=${sev}&window=24h`,
      });
  reasons.sort((a, b) => reasonRank[a.severity] - reasonRank[b.severity]);
  return {
    // Critical (redundancy lost, a critical event) outranks unknown: it is known to be bad.
    health: reasons.some((r) => r.severity === "critical") ? ("critical" as const) : finalHealth,
    reasons,
    alarms: rolledUp.map((a) => ({ ...a, since: a.since === null ? null : new Date(a.since) })),
    alarmThresholds: { withoutRedundancyMs: watch.config.withoutRedundancyMs },
    exposureError,
    mirrors: {
      total: mirrors.length,
      inSync: mirrors.filter((m) => m.trend === "in-sync").length,
      recovering: mirrors.filter((m) => m.trend === "recovering" || m.trend === "unknown").length,
      stalled: stalled.map((m) => m.uuid),
      resyncsRunning: mirrors.filter((m) => m.resyncRunning).length,
      list: mirrors.sort((a, b) => a.percent - b.percent).slice(0, 10),
    },
    nodes: nodeStates,
    nodeCounts: {
      fresh: nodeStates.filter((n) => n.freshness === "fresh").length,
      late: nodeStates.filter((n) => n.freshness === "late").length,
      unknown: nodeStates.filter((n) => n.freshness === "unknown").length,
    },
    eventsLast24h: counts,
    recentEvents: recentEvents.map(({ data, ...e }) => ({
      ...e,
      message: eventMessage(e.kind, e.message, data),
      id: e.id.toString(),
    })),
    recentAudit: recentAudit.map((a) => ({ ...a, id: a.id.toString() })),
  };
}

function formatSecondsAgo(now: Date, at: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}
