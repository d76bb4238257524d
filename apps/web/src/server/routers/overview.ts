import { clusterSummary } from "../domain/overview";
import { createTRPCRouter, protectedProcedure } from "../trpc";

export const overviewRouter = createTRPCRouter({
  /** Cluster health rolled up worst-first (DASHBOARD.md: stale is never shown as healthy). */
  summary: protectedProcedure.query(({ ctx }) => clusterSummary(ctx)),
});
