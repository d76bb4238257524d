import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { trpcErrorCode } from "~/lib/errors";
import { downsampledSeries } from "../downsample";
import { freshness } from "../freshness";
import { bucketMsFor, timelinePoints } from "../timeline";
import { audit, createTRPCRouter, operatorProcedure, protectedProcedure } from "../trpc";

const ZSeriesInput = z.object({
  nodeId: z.string().min(1),
  series: z.array(z.string().min(1).max(200)).min(1).max(50),
  /** Window length ending now (or at `to`). */
  windowMs: z
    .number()
    .int()
    .min(10_000)
    .max(90 * 24 * 3600_000)
    .default(3600_000),
  to: z.date().optional(),
  maxPoints: z.number().int().min(10).max(2_000).default(600),
});

const ZSetTunable = z.object({
  nodeId: z.string().min(1),
  /** Path under /sys/kernel/mm/transparent_hugepage, e.g. `khugepaged/pages_to_scan`. */
  name: z.string().regex(/^[a-z0-9_/-]{1,100}$/, "not a tunable name"),
  value: z.string().min(1).max(64),
  reason: z.string().max(500).optional(),
});

/** The kernel's choice in a `[always] madvise never` file, or the file's text. */
export function selectedChoice(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  const m = /\[([^\]]+)\]/.exec(text);
  return m ? m[1]! : text.trim();
}

/** The value `name` has now, as the agent reports it (null: not reported). */
export function currentTunable(
  name: string,
  live: { tunables: Record<string, number | null>; thp: Record<string, string | number | null> },
): string | null {
  if (name.startsWith("khugepaged/")) {
    const v = live.tunables[name.slice("khugepaged/".length)];
    return v === null || v === undefined ? null : String(v);
  }
  if (name === "enabled") return selectedChoice(live.thp.enabled as string | null);
  if (name === "defrag") return selectedChoice(live.thp.defrag as string | null);
  if (name === "shmem_enabled") return selectedChoice(live.thp.shmemEnabled as string | null);
  return null; // per-size files (hugepages-*/enabled) are not reported by the agent
}

export const khugepagedRouter = createTRPCRouter({
  /**
   * The nodes, and which of them have khugepaged (reported its counters in the last day):
   * the page opens on one that has.
   */
  nodes: protectedProcedure.query(async ({ ctx }) => {
    const [nodes, withThp] = await Promise.all([
      ctx.db.node.findMany({ orderBy: { id: "asc" }, select: { id: true, hostname: true } }),
      ctx.db.$queryRaw<Array<{ node_id: string }>>`
        SELECT DISTINCT node_id FROM samples
         WHERE series = 'khugepaged.full_scans' AND at > ${new Date(ctx.now().getTime() - 86_400_000)}`,
    ]);
    const has = new Set(withThp.map((r) => r.node_id));
    return nodes.map((n) => ({ ...n, hasKhugepaged: has.has(n.id) }));
  }),

  /**
   * One time axis across layers (DASHBOARD.md edge 10): per bucket, khugepaged's collapse
   * activity beside the memory-error, device-error and resync event counts and the resync
   * rate (regions/s; server/timeline.ts). `buckets` is the chart's width in pixels (about
   * one point per pixel). Mirrors are cluster-wide and agents do not say which host backs
   * which leg yet, so the rate is the whole cluster's by default; `resyncScope: "node"`
   * keeps only the runs this node recorded.
   */
  timeline: protectedProcedure
    .input(
      z.object({
        nodeId: z.string().min(1),
        windowMs: z
          .number()
          .int()
          .min(60_000)
          .max(30 * 86_400_000)
          .default(3_600_000),
        buckets: z.number().int().min(10).max(2_000).default(120),
        resyncScope: z.enum(["cluster", "node"]).default("cluster"),
      }),
    )
    .query(async ({ ctx, input }) => {
      const to = ctx.now();
      const from = new Date(to.getTime() - input.windowMs);
      const bucketMs = bucketMsFor(from, to, input.buckets);
      const points = await timelinePoints(ctx.db, {
        nodeId: input.nodeId,
        from,
        to,
        bucketMs,
        resync: input.resyncScope === "node" ? { nodeId: input.nodeId } : {},
      });
      return { from, to, bucketMs, resyncScope: input.resyncScope, points };
    }),

  /**
   * Changes a tunable on a node. The agent validates exactly as the kernel does and
   * refuses with the kernel's reason; both outcomes are audited here, and the agent
   * records the change (old → new, who) as an event.
   */
  setTunable: operatorProcedure.input(ZSetTunable).mutation(async ({ ctx, input }) => {
    const target = `node:${input.nodeId}:${input.name}`;
    const node = await ctx.db.node.findUnique({
      where: { id: input.nodeId },
      select: { apiUrl: true },
    });
    if (!node) throw new TRPCError({ code: "NOT_FOUND", message: `no node ${input.nodeId}` });
    // A write of the value it already has changes nothing: not written, not reported as a change.
    const before = await ctx.agents
      .client(node.apiUrl)
      .khugepaged.current.query()
      .then((live) => currentTunable(input.name, live))
      .catch(() => null);
    if (before !== null && before === input.value.trim()) {
      await audit(ctx, {
        action: "khugepaged.setTunable",
        target,
        params: { value: input.value, ...(input.reason ? { reason: input.reason } : {}) },
        outcome: "ok",
        detail: `unchanged: already ${before}`,
      });
      return { name: input.name, old: before, new: before, changedAt: ctx.now(), changed: false };
    }
    try {
      const change = await ctx.agents.client(node.apiUrl).khugepaged.setTunable.mutate({
        name: input.name,
        value: input.value,
        actor: { id: ctx.user.id, name: ctx.user.username },
        ...(input.reason ? { reason: input.reason } : {}),
      });
      await audit(ctx, {
        action: "khugepaged.setTunable",
        target,
        params: {
          value: input.value,
          old: change.old,
          ...(input.reason ? { reason: input.reason } : {}),
        },
        outcome: "ok",
        ...(selectedChoice(change.old) === selectedChoice(change.new)
          ? { detail: `unchanged: already ${change.new}` }
          : {}),
      });
      return { ...change, changed: selectedChoice(change.old) !== selectedChoice(change.new) };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const code = trpcErrorCode(error);
      const refused = code === "BAD_REQUEST" || code === "NOT_IMPLEMENTED";
      await audit(ctx, {
        action: "khugepaged.setTunable",
        target,
        params: { value: input.value },
        outcome: refused ? "refused" : "failed",
        detail: message,
      });
      throw new TRPCError({
        code: refused ? "BAD_REQUEST" : "BAD_GATEWAY",
        message: refused ? message : `agent unreachable: ${message}`,
      });
    }
  }),

  /** Current tunables and counters, read live by the node's agent from sysfs. */
  current: protectedProcedure
    .input(z.object({ nodeId: z.string().min(1) }))
    .query(async ({ ctx, input }) => {
      const node = await ctx.db.node.findUnique({
        where: { id: input.nodeId },
        select: { apiUrl: true, lastSeenAt: true, sampleIntervalMs: true },
      });
      if (!node) throw new TRPCError({ code: "NOT_FOUND", message: `no node ${input.nodeId}` });
      try {
        const live = await ctx.agents.client(node.apiUrl).khugepaged.current.query();
        return { source: "agent" as const, error: null, ...live };
      } catch (error) {
        // The agent is unreachable: say so, and fall back to the last stored values.
        const latest = await ctx.db.sample.findMany({
          where: { nodeId: input.nodeId, at: node.lastSeenAt },
          select: { series: true, value: true },
        });
        const tunables: Record<string, number | null> = {};
        const vmstat: Record<string, number> = {};
        let pagesCollapsed: number | null = null;
        let fullScans: number | null = null;
        for (const { series, value } of latest) {
          if (series === "khugepaged.pages_collapsed") pagesCollapsed = value;
          else if (series === "khugepaged.full_scans") fullScans = value;
          else if (series.startsWith("khugepaged.")) tunables[series.slice(11)] = value;
          else if (series.startsWith("vmstat.")) vmstat[series.slice(7)] = value;
        }
        return {
          source: "database" as const,
          error: `agent unreachable: ${(error as Error).message}`,
          available: latest.length > 0,
          tunables,
          counters: { pagesCollapsed, fullScans },
          thp: { enabled: null, defrag: null, shmemEnabled: null, hpagePmdSize: null },
          vmstat,
          readAt: node.lastSeenAt,
          freshness: freshness(node.lastSeenAt, node.sampleIntervalMs, ctx.now()),
        };
      }
    }),

  /** Series this node has reported, for the chart pickers. */
  seriesNames: protectedProcedure
    .input(z.object({ nodeId: z.string().min(1) }))
    .query(async ({ ctx, input }) => {
      const rows = await ctx.db.$queryRaw<Array<{ series: string }>>`
        SELECT DISTINCT series FROM samples
         WHERE node_id = ${input.nodeId} AND at > now() - interval '1 day'
         ORDER BY series`;
      return rows.map((r) => r.series);
    }),

  series: protectedProcedure.input(ZSeriesInput).query(async ({ ctx, input }) => {
    const to = input.to ?? ctx.now();
    const from = new Date(to.getTime() - input.windowMs);
    return {
      from,
      to,
      series: await downsampledSeries(ctx.db, {
        nodeId: input.nodeId,
        series: input.series,
        from,
        to,
        maxPoints: input.maxPoints,
      }),
    };
  }),
});
