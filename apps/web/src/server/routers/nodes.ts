import { z } from "zod";
import { freshness } from "../freshness";
import { createTRPCRouter, protectedProcedure } from "../trpc";

export const ZNodeRow = z.object({
  id: z.string(),
  hostname: z.string(),
  apiUrl: z.string(),
  agentVersion: z.string(),
  kernelRelease: z.string().nullable(),
  sampleIntervalMs: z.number(),
  startedAt: z.date(),
  lastSeenAt: z.date(),
  freshness: z.enum(["fresh", "late", "unknown"]),
});

export const nodesRouter = createTRPCRouter({
  list: protectedProcedure.output(z.array(ZNodeRow)).query(async ({ ctx }) => {
    const nodes = await ctx.db.node.findMany({
      orderBy: { id: "asc" },
      select: {
        id: true,
        hostname: true,
        apiUrl: true,
        agentVersion: true,
        kernelRelease: true,
        sampleIntervalMs: true,
        startedAt: true,
        lastSeenAt: true,
      },
    });
    const now = ctx.now();
    return nodes.map((n) => ({
      ...n,
      freshness: freshness(n.lastSeenAt, n.sampleIntervalMs, now),
    }));
  }),
});
