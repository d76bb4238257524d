import { freshness, type TFreshness } from "../freshness";
import { createTRPCRouter, protectedProcedure } from "../trpc";
import { collect, observeTrend } from "./mirrors";

const worstFirst: TFreshness[] = ["unknown", "late", "fresh"];
const severities = ["critical", "error", "warning", "notice", "info", "debug"] as const;

export type THealth = "ok" | "attention" | "unknown";

export const overviewRouter = createTRPCRouter({
  /** Cluster health rolled up worst-first (DASHBOARD.md: stale is never shown as healthy). */
  summary: protectedProcedure.query(async ({ ctx }) => {
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
    const mirrors = mirrorState
      ? [...mirrorState.mirrors.values()].map((m) => ({
          uuid: m.uuid,
          percent: m.regionCount ? (100 * m.inSync) / m.regionCount : 100,
          trend: observeTrend(m.uuid, m.inSync, m.regionCount, now.getTime()),
          resyncRunning: m.resyncId !== null,
        }))
      : [];
    const stalled = mirrors.filter((m) => m.trend === "stalled");
    const finalHealth: THealth = health === "ok" && stalled.length > 0 ? "attention" : health;
    return {
      health: finalHealth,
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
      recentEvents: recentEvents.map((e) => ({ ...e, id: e.id.toString() })),
      recentAudit: recentAudit.map((a) => ({ ...a, id: a.id.toString() })),
    };
  }),
});
