import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { TunableError, ZTunableWrite } from "../collectors/tunables.ts";
import { agentProcedure, createTRPCRouter } from "./trpc.ts";

const ZKhugepaged = z.object({
  available: z.boolean(),
  tunables: z.record(z.string(), z.number().nullable()),
  counters: z.object({ pagesCollapsed: z.number().nullable(), fullScans: z.number().nullable() }),
  thp: z.object({
    enabled: z.string().nullable(),
    defrag: z.string().nullable(),
    shmemEnabled: z.string().nullable(),
    hpagePmdSize: z.number().nullable(),
  }),
  vmstat: z.record(z.string(), z.number()),
  readAt: z.date(),
});

export const nodeRouter = createTRPCRouter({
  info: agentProcedure.query(({ ctx }) => ctx.services.nodeInfo()),
});

export const khugepagedRouter = createTRPCRouter({
  /** Read sysfs and /proc/vmstat now: the same numbers `cat` prints. */
  current: agentProcedure.output(ZKhugepaged).query(async ({ ctx }) => ({
    ...(await ctx.services.readKhugepaged()),
    readAt: new Date(),
  })),
  /**
   * Writes one tunable with the kernel's own validation; a value the kernel would refuse
   * is BAD_REQUEST with the reason. Every attempt is recorded as a `tunable_change` event
   * naming `actor` (the operator the control plane signed in), the old and the new value.
   */
  setTunable: agentProcedure
    .input(ZTunableWrite)
    .output(
      z.object({
        name: z.string(),
        old: z.string().nullable(),
        new: z.string(),
        changedAt: z.date(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      if (!ctx.services.setTunable)
        throw new TRPCError({ code: "NOT_IMPLEMENTED", message: "tunable writes are not enabled" });
      try {
        return await ctx.services.setTunable(input);
      } catch (error) {
        if (error instanceof TunableError)
          throw new TRPCError({ code: "BAD_REQUEST", message: error.message, cause: error });
        throw error;
      }
    }),
});

export const eventsRouter = createTRPCRouter({
  /** Pipeline counters (written, spooled, dropped…) and the sources probed at start. */
  status: agentProcedure.query(({ ctx }) => {
    if (!ctx.services.eventStatus)
      throw new TRPCError({ code: "NOT_IMPLEMENTED", message: "no event pipeline" });
    return ctx.services.eventStatus();
  }),
});

export const agentRouter = createTRPCRouter({
  node: nodeRouter,
  khugepaged: khugepagedRouter,
  events: eventsRouter,
});

export type AgentRouter = typeof agentRouter;
