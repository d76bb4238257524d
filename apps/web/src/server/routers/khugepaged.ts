import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { downsampledSeries } from "../downsample";
import { freshness } from "../freshness";
import { createTRPCRouter, protectedProcedure } from "../trpc";

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

export const khugepagedRouter = createTRPCRouter({
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
