import { ZSmartRefresh } from "@mirrorplane/contracts";
import { z } from "zod";
import { devicesSummary, diskInventory, mirrorLegs, refreshSmart } from "../domain/devices";
import { createTRPCRouter, operatorProcedure, protectedProcedure } from "../trpc";

const ZNodeId = z.string().min(1).max(200);

export const devicesRouter = createTRPCRouter({
  /** Every device a mirror leg is on, with its blast radius (DASHBOARD.md edge 6). */
  mirrorLegs: protectedProcedure.query(({ ctx }) => mirrorLegs(ctx)),

  /** Memory and devices (DASHBOARD.md): device health, failure counts, memory failures. */
  summary: protectedProcedure
    .input(z.object({ days: z.number().int().min(1).max(365).default(7) }).optional())
    .query(({ ctx, input }) => devicesSummary(ctx, input)),

  /** Each node's disks with SMART and the mirror legs on them (issue 13), live from agents. */
  disks: protectedProcedure
    .input(z.object({ nodeId: ZNodeId.optional() }).optional())
    .query(({ ctx, input }) => diskInventory(ctx, input ?? {})),

  /** Reads SMART now on one node (SMART reads cost the drives something: operators only). */
  refreshSmart: operatorProcedure
    .input(ZSmartRefresh.extend({ nodeId: ZNodeId }))
    .mutation(({ ctx, input }) => refreshSmart(ctx, input)),
});
