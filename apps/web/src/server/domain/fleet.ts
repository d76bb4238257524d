import {
  AppError,
  isAgentRefusal,
  type TMirrorLogDevice,
  type TResyncLog,
  type TResyncProgress,
} from "@mirrorplane/contracts";
import { trpcErrorCode } from "~/lib/errors";
import type { AgentClient } from "../agents";
import type { THolderView, TMirrorView } from "../blast-radius";
import { freshness } from "../freshness";
import type { ContextInner } from "../trpc";

// The fleet fan-out: every reachable agent asked which mirrors (cluster logs) it holds, the
// answers joined per mirror, and the calls that go to a mirror's first holder.

export interface Holder {
  nodeId: string;
  client: AgentClient;
}

/** A field an agent may leave out, as the dashboard keeps it: null when unknown. */
type TKnown<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

/**
 * A mirror as the reachable agents report it (`resync.logs`): the sync state is the
 * least-synced report; the CTR facts are the first holder's report of each (the CTR is the
 * same table on every node).
 */
export interface TCollectedMirror
  extends TKnown<
    Pick<
      TResyncLog,
      | "uuid"
      | "regionCount"
      | "inSync"
      | "resyncId"
      | "name"
      | "logType"
      | "regionSectors"
      | "sizeBytes"
    >
  > {
  holders: Holder[];
  /** The log device, and the node that reported it. */
  logDevice: (TMirrorLogDevice & { nodeId: string }) | null;
  /** Each holder's own kernel's view of the legs. */
  views: THolderView[];
}

export type TFleet = Awaited<ReturnType<typeof collect>>;

function holderView(nodeId: string, log: TResyncLog): THolderView {
  if (log.legs)
    return {
      nodeId,
      legs: log.legs,
      reason: null,
      table: log.table ?? null,
      dmUuid: log.dmUuid ?? null,
    };
  return {
    nodeId,
    legs: null,
    reason:
      log.legsUnknownReason ??
      (log.legs === undefined ? "this agent does not report legs" : "legs not reported"),
  };
}

/** Region size in bytes, when the agent reported it. */
export function regionBytes(m: { regionSectors: number | null }): number | null {
  return m.regionSectors === null ? null : m.regionSectors * 512;
}

export function mirrorView(m: TCollectedMirror): TMirrorView {
  return {
    uuid: m.uuid,
    name: m.name,
    regionCount: m.regionCount,
    inSync: m.inSync,
    regionBytes: regionBytes(m),
    views: m.views,
  };
}

/** The legs to show for a mirror: the first holder's view that has them. */
export function shownLegs(m: TCollectedMirror) {
  const view = m.views.find((v) => v.legs) ?? m.views[0] ?? null;
  return {
    legs: view?.legs ?? null,
    legsNodeId: view?.nodeId ?? null,
    legsUnknownReason: view?.legs ? null : (view?.reason ?? null),
  };
}

/** Asks every reachable agent which mirrors (cluster logs) it holds. */
export async function collect(ctx: Pick<ContextInner, "db" | "agents" | "now">) {
  const nodes = await ctx.db.node.findMany({
    orderBy: { id: "asc" },
    select: { id: true, apiUrl: true, lastSeenAt: true, sampleIntervalMs: true },
  });
  const now = ctx.now();
  const results = await Promise.all(
    nodes.map(async (n) => {
      if (freshness(n.lastSeenAt, n.sampleIntervalMs, now) === "unknown")
        return { node: n.id, logs: null, error: "node state unknown" };
      const client = ctx.agents.client(n.apiUrl);
      try {
        return {
          node: n.id,
          client,
          logs: await client.resync.logs.query(),
          error: null,
        };
      } catch (error) {
        const code = trpcErrorCode(error);
        // An agent without a cluster-log server simply holds no mirror.
        if (code === "NOT_IMPLEMENTED")
          return { node: n.id, logs: [] as TResyncLog[], error: null };
        return { node: n.id, logs: null, error: (error as Error).message };
      }
    }),
  );
  const mirrors = new Map<string, TCollectedMirror>();
  for (const r of results) {
    if (!r.logs || !("client" in r) || !r.client) continue;
    for (const log of r.logs) {
      const m: TCollectedMirror = mirrors.get(log.uuid) ?? {
        uuid: log.uuid,
        regionCount: log.regionCount,
        inSync: log.inSync,
        resyncId: log.resyncId,
        holders: [],
        name: null,
        logType: null,
        regionSectors: null,
        sizeBytes: null,
        logDevice: null,
        views: [],
      };
      m.holders.push({ nodeId: r.node, client: r.client });
      // Replicas agree; if a report is behind, show the less-synced (never the rosier) one.
      m.inSync = Math.min(m.inSync, log.inSync);
      m.resyncId ??= log.resyncId;
      // Older agents leave the kernel's facts out (undefined): unknown, not absent.
      m.name ??= log.name ?? null;
      m.logType ??= log.logType ?? null;
      m.regionSectors ??= log.regionSectors ?? null;
      m.sizeBytes ??= log.sizeBytes ?? null;
      m.logDevice ??= log.logDevice ? { nodeId: r.node, ...log.logDevice } : null;
      m.views.push(holderView(r.node, log));
      mirrors.set(log.uuid, m);
    }
  }
  return {
    mirrors,
    unreachable: results.filter((r) => r.error).map((r) => ({ nodeId: r.node, error: r.error! })),
  };
}

/** The mirror `uuid` with at least one reachable holder, or NOT_FOUND. */
export function held(mirrors: Map<string, TCollectedMirror>, uuid: string): TCollectedMirror {
  const m = mirrors.get(uuid);
  if (!m || m.holders.length === 0)
    throw new AppError("NOT_FOUND", `no reachable node holds mirror ${uuid}`);
  return m;
}

export async function holderOf(ctx: ContextInner, uuid: string) {
  return held((await collect(ctx)).mirrors, uuid);
}

/** The latest resync of `m` as the node that runs the dashboard's resyncs reports it. */
export async function latestProgress(m: TCollectedMirror): Promise<TResyncProgress | null> {
  return m.holders[0]!.client.resync.progress.query({ uuid: m.uuid }).catch(() => null);
}

/** The mirror's region map at one bucket per region (or as close as the agent allows). */
export async function regionStates(m: TCollectedMirror) {
  const map = await m.holders[0]!.client.resync.regionMap.query({
    uuid: m.uuid,
    buckets: Math.max(1, Math.min(m.regionCount, 1_000_000)),
  });
  return {
    states: Uint8Array.from(Buffer.from(map.buckets, "base64")),
    regionsPerBucket: map.regionsPerBucket,
  };
}

/**
 * An agent's error as the operator is told it: the agent's refusals of the request itself
 * as they are, anything else a failure behind the dashboard (BAD_GATEWAY, "agent: …").
 */
export function agentFailure(error: unknown): AppError {
  const code = trpcErrorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (isAgentRefusal(code)) return new AppError(code, message, { cause: error });
  return new AppError("BAD_GATEWAY", `agent: ${message}`, { cause: error });
}

/** Runs one call to an agent; its errors become `agentFailure`s. */
export async function agentCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw agentFailure(error);
  }
}
