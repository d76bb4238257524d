import { z } from "zod";
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
});

export const agentRouter = createTRPCRouter({
  node: nodeRouter,
  khugepaged: khugepagedRouter,
});

export type AgentRouter = typeof agentRouter;
