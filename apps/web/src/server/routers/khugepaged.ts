import { z } from "zod";
import { currentKhugepaged, setTunable } from "../domain/tunables";
import { downsampledSeries } from "../downsample";
import { bucketMsFor, timelinePoints } from "../timeline";
import { createTRPCRouter, operatorProcedure, protectedProcedure } from "../trpc";

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

  /** Changes a tunable on a node (domain/tunables.ts), audited either way. */
  setTunable: operatorProcedure
    .input(ZSetTunable)
    .mutation(({ ctx, input }) => setTunable(ctx, input)),

  /** Current tunables and counters, read live by the node's agent from sysfs. */
  current: protectedProcedure
    .input(z.object({ nodeId: z.string().min(1) }))
    .query(({ ctx, input }) => currentKhugepaged(ctx, input)),

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
