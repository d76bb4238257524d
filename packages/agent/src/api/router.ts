import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { ResyncError } from "../clusterlog/resync-control.ts";
import { TunableError, ZTunableWrite } from "../collectors/tunables.ts";
import { type AgentContext, agentProcedure, createTRPCRouter } from "./trpc.ts";

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

const ZResyncProgress = z.object({
  uuid: z.string(),
  id: z.string(),
  state: z.enum(["running", "paused", "done", "cancelled", "failed"]),
  first: z.number(),
  last: z.number(),
  total: z.number(),
  inSync: z.number(),
  percent: z.number(),
  rate: z.number().nullable(),
  etaSeconds: z.number().nullable(),
  recoveringNode: z.number().nullable(),
  recoveringRegion: z.number().nullable(),
  throttle: z.number().nullable(),
  startedAt: z.number(),
  endedAt: z.number().nullable(),
  logInSync: z.number(),
  regionCount: z.number(),
});
/** dm-raid1's health character per leg (KERNEL-SOURCES.md §3.3). */
const ZLegHealth = z.enum(["A", "F", "D", "S", "R", "U"]);
const ZMirrorLeg = z.object({
  /** Kernel name (`dm-3`, `sdb`), `M:m` when unresolved, or the simulator's leg file. */
  device: z.string(),
  /** The device-mapper name of a dm leg. */
  label: z.string().nullable(),
  majorMinor: z.string().nullable(),
  health: ZLegHealth,
  /** The table's first leg (dm-raid1's default mirror at load). */
  primary: z.boolean(),
  /** The default mirror now: reads and recovery copy from it (the first leg without errors). */
  source: z.boolean(),
  /** Devices the leg is built on (sysfs slaves, recursively; partitions' disks): the blast radius. */
  underlying: z.array(z.string()),
});
/**
 * A mirror (log group) this replica holds. Every field after `resyncId` is optional: older
 * agents, and agents without a kernel inventory, leave them out.
 */
const ZResyncLog = z.object({
  uuid: z.string(),
  regionCount: z.number(),
  inSync: z.number(),
  resyncId: z.string().nullable(),
  /** The dm device (or simulated mirror) name on this host. */
  name: z.string().nullable().optional(),
  /** `clustered-disk` or `clustered-core` (from the log's CTR). */
  logType: z.string().nullable().optional(),
  /** Region size in 512-byte sectors (from the log's CTR). */
  regionSectors: z.number().nullable().optional(),
  /** The mirror's size (the CTR's target length × 512). */
  sizeBytes: z.number().nullable().optional(),
  /** This host's kernel's legs in table order; null when it does not report the mirror. */
  legs: z.array(ZMirrorLeg).nullable().optional(),
  legsUnknownReason: z.string().nullable().optional(),
  logDevice: z
    .object({
      device: z.string(),
      majorMinor: z.string().nullable(),
      health: z.enum(["A", "D"]).nullable(),
    })
    .nullable()
    .optional(),
});
const ZLogUuid = z.object({ uuid: z.string().min(1).max(128) });
export const ZResyncStart = ZLogUuid.extend({
  /** Inclusive region range; both omitted = the whole mirror. */
  first: z.number().int().min(0).optional(),
  last: z.number().int().min(0).optional(),
  /** Regions per second at most (omitted: unthrottled). */
  throttle: z.number().int().min(1).optional(),
  /** The operator the control plane signed in, for the event. */
  actor: z.string().max(200).optional(),
});

function resyncService(ctx: { services: AgentContext["services"] }) {
  if (!ctx.services.resync)
    throw new TRPCError({
      code: "NOT_IMPLEMENTED",
      message: "no cluster-log server on this agent",
    });
  return ctx.services.resync;
}

async function resyncCall<T>(call: () => Promise<T> | T): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ResyncError)
      throw new TRPCError({ code: error.code, message: error.message, cause: error });
    throw error;
  }
}

export const resyncRouter = createTRPCRouter({
  /**
   * Mirrors (log groups) this replica holds: regions in sync, running resync; and, where the
   * agent has a kernel inventory, legs with their health, region size, log type and device.
   */
  logs: agentProcedure.output(z.array(ZResyncLog)).query(({ ctx }) => resyncService(ctx).logs()),
  /**
   * The mirror's regions for the dashboard's map: the worst state per bucket (0 in sync,
   * 1 out of sync, 2 marked, 3 recovering), base64 of one byte per bucket.
   */
  regionMap: agentProcedure
    .input(ZLogUuid.extend({ buckets: z.number().int().min(1).max(1_000_000).default(115_200) }))
    .output(
      z.object({ regionCount: z.number(), regionsPerBucket: z.number(), buckets: z.string() }),
    )
    .query(({ ctx, input }) =>
      resyncCall(() => {
        const map = resyncService(ctx).regionMap(input.uuid, input.buckets);
        return {
          regionCount: map.regionCount,
          regionsPerBucket: map.regionsPerBucket,
          buckets: Buffer.from(
            map.buckets.buffer,
            map.buckets.byteOffset,
            map.buckets.byteLength,
          ).toString("base64"),
        };
      }),
    ),
  /** The latest resync of a mirror: regions in sync, windowed rate, who recovers what. */
  progress: agentProcedure
    .input(ZLogUuid)
    .output(ZResyncProgress.nullable())
    .query(({ ctx, input }) => resyncService(ctx).progress(input.uuid)),
  /**
   * Makes the range out of sync through the total order (the recovery cursor restarts) and
   * suspends/resumes this host's mirror so its kernel asks for resync work again.
   */
  start: agentProcedure
    .input(ZResyncStart)
    .output(ZResyncProgress)
    .mutation(({ ctx, input }) => resyncCall(() => resyncService(ctx).startResync(input))),
  /** Regions the resync made out of sync and nobody touched since are in sync again. */
  cancel: agentProcedure
    .input(ZLogUuid.extend({ actor: z.string().max(200).optional() }))
    .output(ZResyncProgress)
    .mutation(({ ctx, input }) =>
      resyncCall(() => resyncService(ctx).cancel(input.uuid, input.actor)),
    ),
  /** At most `regionsPerSecond` by the sweep (null: no limit); writes never wait on it. */
  throttle: agentProcedure
    .input(ZLogUuid.extend({ regionsPerSecond: z.number().int().min(1).nullable() }))
    .output(ZResyncProgress)
    .mutation(({ ctx, input }) =>
      resyncCall(() => resyncService(ctx).throttle(input.uuid, input.regionsPerSecond)),
    ),
});

export const clusterRouter = createTRPCRouter({
  /** Members, who serves each log, recent membership changes, the order's connection. */
  membership: agentProcedure.query(({ ctx }) => {
    const membership = ctx.services.membership;
    if (!membership) {
      throw new TRPCError({
        code: "NOT_IMPLEMENTED",
        message: "this agent runs no cluster-log server (no clusterLog in its configuration)",
      });
    }
    return membership();
  }),
});

export const agentRouter = createTRPCRouter({
  cluster: clusterRouter,
  node: nodeRouter,
  khugepaged: khugepagedRouter,
  events: eventsRouter,
  resync: resyncRouter,
});

export type AgentRouter = typeof agentRouter;
