import { AppError, agentApi, type TClusterMembership } from "@mirrorplane/contracts";
import { ResyncError } from "../clusterlog/resync-control.ts";
import { TunableError } from "../collectors/tunables.ts";
import { type AgentContext, agentProcedure, createTRPCRouter } from "./trpc.ts";

// Every procedure takes its input and output schema from the contract
// (@mirrorplane/contracts `agentApi`): what the dashboard is told it gets is what is checked
// here before it leaves. The comments on what each procedure does are there.

const api = agentApi;

function notImplemented(message: string): never {
  throw new AppError("NOT_IMPLEMENTED", message);
}

export const nodeRouter = createTRPCRouter({
  info: agentProcedure.output(api.node.info.output).query(({ ctx }) => ctx.services.nodeInfo()),
});

export const khugepagedRouter = createTRPCRouter({
  current: agentProcedure.output(api.khugepaged.current.output).query(async ({ ctx }) => ({
    ...(await ctx.services.readKhugepaged()),
    readAt: new Date(),
  })),
  setTunable: agentProcedure
    .input(api.khugepaged.setTunable.input)
    .output(api.khugepaged.setTunable.output)
    .mutation(async ({ ctx, input }) => {
      if (!ctx.services.setTunable) notImplemented("tunable writes are not enabled");
      try {
        return await ctx.services.setTunable(input);
      } catch (error) {
        if (error instanceof TunableError)
          throw new AppError("BAD_REQUEST", error.message, { cause: error });
        throw error;
      }
    }),
});

export const eventsRouter = createTRPCRouter({
  status: agentProcedure.output(api.events.status.output).query(({ ctx }) => {
    if (!ctx.services.eventStatus) notImplemented("no event pipeline");
    return ctx.services.eventStatus();
  }),
});

function resyncService(ctx: { services: AgentContext["services"] }) {
  if (!ctx.services.resync) notImplemented("no cluster-log server on this agent");
  return ctx.services.resync;
}

async function resyncCall<T>(call: () => Promise<T> | T): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof ResyncError)
      throw new AppError(error.code, error.message, { cause: error });
    throw error;
  }
}

const resync = api.resync;
export const resyncRouter = createTRPCRouter({
  logs: agentProcedure.output(resync.logs.output).query(({ ctx }) => resyncService(ctx).logs()),
  regionMap: agentProcedure
    .input(resync.regionMap.input)
    .output(resync.regionMap.output)
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
  progress: agentProcedure
    .input(resync.progress.input)
    .output(resync.progress.output)
    .query(({ ctx, input }) => resyncService(ctx).progress(input.uuid)),
  start: agentProcedure
    .input(resync.start.input)
    .output(resync.start.output)
    .mutation(({ ctx, input }) => resyncCall(() => resyncService(ctx).startResync(input))),
  cancel: agentProcedure
    .input(resync.cancel.input)
    .output(resync.cancel.output)
    .mutation(({ ctx, input }) =>
      resyncCall(() => resyncService(ctx).cancel(input.uuid, input.actor)),
    ),
  throttle: agentProcedure
    .input(resync.throttle.input)
    .output(resync.throttle.output)
    .mutation(({ ctx, input }) =>
      resyncCall(() => resyncService(ctx).throttle(input.uuid, input.regionsPerSecond)),
    ),
});

function diskService(ctx: { services: AgentContext["services"] }) {
  if (!ctx.services.disks) notImplemented("this agent keeps no disk inventory");
  return ctx.services.disks;
}

export const disksRouter = createTRPCRouter({
  list: agentProcedure.output(api.disks.list.output).query(({ ctx }) => diskService(ctx).list()),
  refreshSmart: agentProcedure
    .input(api.disks.refreshSmart.input)
    .output(api.disks.refreshSmart.output)
    .mutation(({ ctx, input }) => diskService(ctx).refresh(input.device)),
});

export const clusterRouter = createTRPCRouter({
  membership: agentProcedure.output(api.cluster.membership.output).query(({ ctx }) => {
    const membership = ctx.services.membership;
    if (!membership)
      notImplemented("this agent runs no cluster-log server (no clusterLog in its configuration)");
    // The service's view is read-only; the output schema copies it on the way out.
    return membership() as TClusterMembership;
  }),
});

export const agentRouter = createTRPCRouter({
  cluster: clusterRouter,
  disks: disksRouter,
  node: nodeRouter,
  khugepaged: khugepagedRouter,
  events: eventsRouter,
  resync: resyncRouter,
});

export type AgentRouter = typeof agentRouter;
