import {
  firstNotAfterLast,
  ZLogUuid,
  ZRegionsPerSecond,
  ZResyncRange,
  ZResyncRangeFields,
} from "@mirrorplane/contracts";
import { z } from "zod";
import {
  mirrorDetail,
  mirrorList,
  mirrorsBlastRadius,
  regionMap,
  resyncHistory,
} from "../domain/mirrors";
import { bulkResync, cancelResync, startResync, throttleResync } from "../domain/resync";
import { bulkResyncPlan, resyncPlan } from "../domain/resync-plan";
import { createTRPCRouter, operatorProcedure, protectedProcedure } from "../trpc";

// Thin procedures: each an input schema and a call into server/domain.

// The range is the contract's, so the dashboard and the agent check it with the same limits.
const ZUuid = ZLogUuid;
const ZPlan = ZResyncRangeFields.extend({
  /** Plan the smallest range holding every region out of sync now (first/last ignored). */
  outOfSyncOnly: z.boolean().optional(),
}).refine(...firstNotAfterLast);
const ZBulk = z.object({
  uuids: z.array(ZLogUuid.shape.uuid).min(1).max(100),
  throttle: ZRegionsPerSecond.optional(),
});

export const mirrorsRouter = createTRPCRouter({
  list: protectedProcedure.query(({ ctx }) => mirrorList(ctx)),

  detail: protectedProcedure.input(ZUuid).query(({ ctx, input }) => mirrorDetail(ctx, input.uuid)),

  /**
   * Blast radius (DASHBOARD.md edge 6): the mirrors that lose their last good copy if this
   * device (as `nodeId` names it) or, without a device, this node fails now.
   */
  blastRadius: protectedProcedure
    .input(
      z.object({
        nodeId: z.string().min(1).max(200),
        device: z.string().min(1).max(4096).optional(),
      }),
    )
    .query(({ ctx, input }) => mirrorsBlastRadius(ctx, input)),

  /** The region map, reduced on the agent to about one bucket per canvas pixel. */
  regionMap: protectedProcedure
    .input(ZUuid.extend({ buckets: z.number().int().min(100).max(500_000).default(115_200) }))
    .query(({ ctx, input }) => regionMap(ctx, input)),

  /** Every resync run of this mirror (DASHBOARD.md edge 11), from Postgres. */
  history: protectedProcedure
    .input(ZUuid.extend({ limit: z.number().int().min(1).max(200).default(20) }))
    .query(({ ctx, input }) => resyncHistory(ctx, input)),

  /** Dry run: what a resync of this range would do, before anything happens. */
  plan: protectedProcedure.input(ZPlan).query(({ ctx, input }) => resyncPlan(ctx, input)),

  /** Dry run of a bulk resync of whole mirrors, with the per-node guard's refusals. */
  bulkPlan: protectedProcedure.input(ZBulk).query(({ ctx, input }) => bulkResyncPlan(ctx, input)),

  startResync: operatorProcedure
    .input(ZResyncRange)
    .mutation(({ ctx, input }) => startResync(ctx, input)),

  /** Bulk resync of whole mirrors under the per-node guard (DASHBOARD.md edge 9). */
  bulkResync: operatorProcedure.input(ZBulk).mutation(({ ctx, input }) => bulkResync(ctx, input)),

  cancel: operatorProcedure
    .input(ZUuid)
    .mutation(({ ctx, input }) => cancelResync(ctx, input.uuid)),

  throttle: operatorProcedure
    .input(ZUuid.extend({ regionsPerSecond: ZRegionsPerSecond.nullable() }))
    .mutation(({ ctx, input }) => throttleResync(ctx, input)),
});
