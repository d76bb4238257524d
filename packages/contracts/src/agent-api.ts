import { z } from "zod";
import { ZDiskInventory, ZSmartRefresh } from "./disks.ts";
import {
  ZActorName,
  ZLogUuid,
  ZRegionMap,
  ZRegionMapInput,
  ZRegionsPerSecond,
  ZResyncLog,
  ZResyncProgress,
  ZResyncStart,
} from "./mirrors.ts";
import { ZKhugepaged, ZTunableChange, ZTunableWrite } from "./tunables.ts";

// The agent's tRPC API as data: for every procedure its kind, input and output schema. The
// agent's router is built on these (.input/.output); the dashboard calls agents through
// `createContractClient(agentApi, …)` and checks each answer against the output schema, so
// neither side needs the other's code, and an agent of another version that answers
// outside the contract is an error that says so, not a wrong number on a page.

export const ZNodeInfo = z.object({
  nodeId: z.string(),
  hostname: z.string(),
  agentVersion: z.string(),
  kernelRelease: z.string(),
  root: z.string(),
  startedAt: z.date(),
  sampleIntervalMs: z.number(),
});
export type TNodeInfo = z.infer<typeof ZNodeInfo>;

/** The event pipeline's counters. */
export const ZPipelineStats = z.object({
  written: z.number(),
  duplicates: z.number(),
  spooled: z.number(),
  replayed: z.number(),
  dropped: z.number(),
  /** Refused by Postgres for their data (logged). */
  rejected: z.number(),
  queued: z.number(),
  spoolEvents: z.number(),
  spoolBytes: z.number(),
  databaseReachable: z.boolean(),
});
export type TPipelineStats = z.infer<typeof ZPipelineStats>;

export const ZEventStatus = z.object({
  pipeline: ZPipelineStats,
  /** Which host sources (kmsg, edac, pmem…) the agent found at start. */
  sources: z.record(z.string(), z.boolean()),
});
export type TEventStatus = z.infer<typeof ZEventStatus>;

export const ZMembershipChange = z.object({
  kind: z.enum(["node-join", "node-leave", "node-failed", "server"]),
  /** The member concerned; for "server", the log's new serving node (null: none). */
  node: z.number().nullable(),
  /** Who published it (a failure: the declaring survivor); for "server", the previous one. */
  by: z.number().nullable(),
  /** The order's sequence number of the change. */
  seq: z.number(),
  /** When it was applied (ms since epoch). */
  at: z.number(),
  /** The log, for "server". */
  uuid: z.string().optional(),
});

/**
 * The cluster as one member sees it (issue 14): its member id, the members, each log's
 * serving node, the recent changes, and how it is ordered (in-process, or JetStream and
 * whether its NATS connection is up).
 */
export const ZClusterMembership = z.object({
  nodeId: z.number(),
  members: z.array(z.number()),
  servedBy: z.record(z.string(), z.number()),
  recent: z.array(ZMembershipChange),
  order: z.object({ kind: z.enum(["in-process", "jetstream"]), connected: z.boolean() }),
});
export type TClusterMembership = z.infer<typeof ZClusterMembership>;

/** One procedure of a contract: a query or a mutation, its input (if any) and its output. */
export interface TProcedureContract<
  TKind extends "query" | "mutation" = "query" | "mutation",
  TInput extends z.ZodType | undefined = z.ZodType | undefined,
  TOutput extends z.ZodType = z.ZodType,
> {
  readonly kind: TKind;
  readonly input: TInput;
  readonly output: TOutput;
}

/** Procedures by name, nested as the router nests them. */
export interface TContract {
  readonly [name: string]: TProcedureContract | TContract;
}

function query<TOutput extends z.ZodType, TInput extends z.ZodType | undefined = undefined>(
  output: TOutput,
  input?: TInput,
): TProcedureContract<"query", TInput, TOutput> {
  return { kind: "query", input: input as TInput, output };
}

function mutation<TInput extends z.ZodType, TOutput extends z.ZodType>(
  input: TInput,
  output: TOutput,
): TProcedureContract<"mutation", TInput, TOutput> {
  return { kind: "mutation", input, output };
}

export const agentApi = {
  node: {
    info: query(ZNodeInfo),
  },
  khugepaged: {
    /** Read sysfs and /proc/vmstat now: the same numbers `cat` prints. */
    current: query(ZKhugepaged),
    /**
     * Writes one tunable with the kernel's own validation; a value the kernel would refuse
     * is BAD_REQUEST with the reason. Every attempt is recorded as a `tunable_change` event
     * naming `actor`, the old and the new value.
     */
    setTunable: mutation(ZTunableWrite, ZTunableChange),
  },
  events: {
    /** Pipeline counters (written, spooled, dropped…) and the sources probed at start. */
    status: query(ZEventStatus),
  },
  resync: {
    /**
     * Mirrors (log groups) this replica holds: regions in sync, running resync; and, where
     * the agent has a kernel inventory, legs with their health, region size, log type and
     * log device.
     */
    logs: query(z.array(ZResyncLog)),
    /** The mirror's regions for the dashboard's map: the worst `regionState` per bucket. */
    regionMap: query(ZRegionMap, ZRegionMapInput),
    /** The latest resync of a mirror (null: none since the agent started). */
    progress: query(ZResyncProgress.nullable(), ZLogUuid),
    /**
     * Makes the range out of sync through the total order (the recovery cursor restarts)
     * and suspends/resumes this host's mirror so its kernel asks for resync work again.
     */
    start: mutation(ZResyncStart, ZResyncProgress),
    /** Regions the resync made out of sync and nobody touched since are in sync again. */
    cancel: mutation(ZLogUuid.extend({ actor: ZActorName.optional() }), ZResyncProgress),
    /** At most `regionsPerSecond` by the sweep (null: no limit); writes never wait on it. */
    throttle: mutation(
      ZLogUuid.extend({ regionsPerSecond: ZRegionsPerSecond.nullable() }),
      ZResyncProgress,
    ),
  },
  disks: {
    /**
     * Every whole block device under /sys/block (sysfs read now), the mirror legs on each,
     * and SMART health as last read (every `--smart-interval-ms`, and on `refreshSmart`).
     */
    list: query(ZDiskInventory),
    /** Reads SMART now (one device or all, bounded concurrency) and answers the inventory. */
    refreshSmart: mutation(ZSmartRefresh, ZDiskInventory),
  },
  cluster: {
    /** Members, who serves each log, recent membership changes, the order's connection. */
    membership: query(ZClusterMembership),
  },
} as const satisfies TContract;
export type TAgentApi = typeof agentApi;
