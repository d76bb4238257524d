import { z } from "zod";
import { devicesSummary, mirrorLegs } from "../domain/devices";
import { createTRPCRouter, protectedProcedure } from "../trpc";

export const devicesRouter = createTRPCRouter({
  /** Every device a mirror leg is on, with its blast radius (DASHBOARD.md edge 6). */
  mirrorLegs: protectedProcedure.query(({ ctx }) => mirrorLegs(ctx)),

  /** Memory and devices (DASHBOARD.md): device health, failure counts, memory failures. */
  summary: protectedProcedure
    .input(z.object({ days: z.number().int().min(1).max(365).default(7) }).optional())
    .query(({ ctx, input }) => devicesSummary(ctx, input)),
});
