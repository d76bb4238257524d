import { z } from "zod";
import { errorMessage, trpcErrorCode } from "~/lib/errors";
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

  /**
   * Cluster membership as each reachable agent's cluster-log replica sees it (the agent's
   * cluster.membership): its member id, the members, which member serves each log, the
   * recent joins, leaves and failures, and the order (in-process or JetStream, connected).
   * Agents without a cluster-log server say so; unreachable ones say why.
   */
  membership: protectedProcedure.query(async ({ ctx }) => {
    const nodes = await ctx.db.node.findMany({
      orderBy: { id: "asc" },
      select: { id: true, apiUrl: true, lastSeenAt: true, sampleIntervalMs: true },
    });
    const now = ctx.now();
    return Promise.all(
      nodes.map(async (n) => {
        if (freshness(n.lastSeenAt, n.sampleIntervalMs, now) === "unknown")
          return {
            nodeId: n.id,
            membership: null,
            note: "Its state is unknown (it missed three reports)",
          };
        try {
          const m = await ctx.agents.client(n.apiUrl).cluster.membership.query();
          return {
            nodeId: n.id,
            membership: {
              memberId: m.nodeId,
              members: [...m.members],
              servedBy: { ...m.servedBy },
              order: m.order,
              recent: m.recent.slice(-20).map((r) => ({ ...r, at: new Date(r.at) })),
            },
            note: null,
          };
        } catch (error) {
          const code = trpcErrorCode(error);
          return {
            nodeId: n.id,
            membership: null,
            note:
              code === "NOT_IMPLEMENTED"
                ? "This agent runs no cluster-log server"
                : code === "NOT_FOUND"
                  ? "This agent does not report membership (an older version)"
                  : `The agent cannot be asked: ${errorMessage(error)}`,
          };
        }
      }),
    );
  }),
});
