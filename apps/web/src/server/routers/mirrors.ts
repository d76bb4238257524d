import {
  firstNotAfterLast,
  isAgentRefusal,
  type TMirrorLogDevice,
  type TResyncLog,
  type TResyncProgress,
  ZLogUuid,
  ZRegionsPerSecond,
  ZResyncRange,
  ZResyncRangeFields,
} from "@mirrorplane/contracts";
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { trpcErrorCode } from "~/lib/errors";
import { outOfSyncOutside, outOfSyncSpan } from "~/lib/protection";
import type { AgentClient } from "../agents";
import {
  deviceBlastRadius,
  nodeBlastRadius,
  type THolderView,
  type TMirrorView,
} from "../blast-radius";
import { freshness } from "../freshness";
import {
  audit,
  type ContextInner,
  createTRPCRouter,
  operatorProcedure,
  protectedProcedure,
} from "../trpc";

/** At most this many resyncs running per node at once (DASHBOARD.md edge 9: bulk with guards). */
export const maxResyncsPerNode = 2;

interface Holder {
  nodeId: string;
  client: AgentClient;
}

export type TMirrorTrend = "in-sync" | "recovering" | "stalled" | "unknown";

/**
 * Progress-aware state (DASHBOARD.md edge 5): a mirror that is out of sync but gaining
 * regions is "recovering" (no alarm); one that has gained nothing for `stallMs` is
 * "stalled" (an alarm). Kept per web process from successive observations.
 */
const trends = new Map<string, { inSync: number; lastGainAt: number; firstSeenAt: number }>();
export const stallMs = 60_000;

export function observeTrend(
  uuid: string,
  inSync: number,
  regionCount: number,
  now: number,
): TMirrorTrend {
  if (inSync >= regionCount) {
    trends.set(uuid, {
      inSync,
      lastGainAt: now,
      firstSeenAt: trends.get(uuid)?.firstSeenAt ?? now,
    });
    return "in-sync";
  }
  const prev = trends.get(uuid);
  if (!prev) {
    trends.set(uuid, { inSync, lastGainAt: now, firstSeenAt: now });
    return "unknown";
  }
  const lastGainAt = inSync > prev.inSync ? now : prev.lastGainAt;
  trends.set(uuid, { inSync, lastGainAt, firstSeenAt: prev.firstSeenAt });
  if (now - lastGainAt <= stallMs)
    return now - prev.firstSeenAt < 2_000 && inSync <= prev.inSync ? "unknown" : "recovering";
  return "stalled";
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

function holderView(nodeId: string, log: TResyncLog): THolderView {
  if (log.legs) return { nodeId, legs: log.legs, reason: null };
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
function shownLegs(m: TCollectedMirror) {
  const view = m.views.find((v) => v.legs) ?? m.views[0] ?? null;
  return {
    legs: view?.legs ?? null,
    legsNodeId: view?.nodeId ?? null,
    legsUnknownReason: view?.legs ? null : (view?.reason ?? null),
  };
}

/** Asks every reachable agent which mirrors (cluster logs) it holds. */
export async function collect(ctx: ContextInner) {
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

function held(mirrors: Map<string, TCollectedMirror>, uuid: string): TCollectedMirror {
  const m = mirrors.get(uuid);
  if (!m || m.holders.length === 0)
    throw new TRPCError({ code: "NOT_FOUND", message: `no reachable node holds mirror ${uuid}` });
  return m;
}

async function holderOf(ctx: ContextInner, uuid: string) {
  return held((await collect(ctx)).mirrors, uuid);
}

/** The latest resync of `m` as the node that runs the dashboard's resyncs reports it. */
async function latestProgress(m: TCollectedMirror): Promise<TResyncProgress | null> {
  return m.holders[0]!.client.resync.progress.query({ uuid: m.uuid }).catch(() => null);
}

export interface TRecoveryStopped {
  reason: "cancelled" | "failed";
  resyncId: string;
  /** When it ended (ms since epoch). */
  at: number;
}

/**
 * Out of sync with nothing recovering it: no resync runs and the last one was cancelled or
 * failed (a cancel declares nothing in sync and stops the sweep: the agent's cancel).
 */
export function recoveryStoppedOf(
  m: Pick<TCollectedMirror, "inSync" | "regionCount" | "resyncId">,
  progress: TResyncProgress | null,
): TRecoveryStopped | null {
  if (m.inSync >= m.regionCount || m.resyncId !== null || !progress) return null;
  if (progress.state !== "cancelled" && progress.state !== "failed") return null;
  return { reason: progress.state, resyncId: progress.id, at: progress.endedAt ?? Date.now() };
}

/** The mirror's region map at one bucket per region (or as close as the agent allows). */
async function regionStates(m: TCollectedMirror) {
  const map = await m.holders[0]!.client.resync.regionMap.query({
    uuid: m.uuid,
    buckets: Math.max(1, Math.min(m.regionCount, 1_000_000)),
  });
  return {
    states: Uint8Array.from(Buffer.from(map.buckets, "base64")),
    regionsPerBucket: map.regionsPerBucket,
  };
}

/** What the blast radius can and cannot say (shown beside it). */
export const blastRadiusCaveats = {
  device:
    "From each node's own kernel view: a mirror is listed when every leg without errors is on this device (or built on it), or when it is out of sync and its resync source leg is. Devices are named as that node names them.",
  node: "Legs of a clustered mirror are shared storage: a node failure loses no leg. Listed: mirrors no other reachable node holds, and mirrors where only this node still sees a leg without errors. Where legs physically live is not reported by the agents.",
} as const;

function agentError(error: unknown): TRPCError {
  const code = trpcErrorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  // The agent's refusals of the request itself reach the operator as they are.
  if (isAgentRefusal(code)) return new TRPCError({ code, message });
  return new TRPCError({ code: "BAD_GATEWAY", message: `agent: ${message}` });
}

/**
 * Calls an agent on behalf of the signed-in operator and writes the audit row either way:
 * ok with `detail(result)`, or refused/failed with the agent's reason (then rethrown).
 */
async function auditedAgentCall<T>(
  ctx: ContextInner,
  entry: { action: string; target: string; params?: unknown },
  call: () => Promise<T>,
  detail: (result: T) => string | undefined = () => undefined,
): Promise<T> {
  try {
    const result = await call();
    const d = detail(result);
    await audit(ctx, { ...entry, outcome: "ok", ...(d ? { detail: d } : {}) });
    return result;
  } catch (error) {
    const e = agentError(error);
    await audit(ctx, {
      ...entry,
      outcome: e.code === "BAD_GATEWAY" ? "failed" : "refused",
      detail: e.message,
    });
    throw e;
  }
}

// The range is the contract's, so the dashboard and the agent check it with the same limits.
const ZUuid = ZLogUuid;
const ZPlan = ZResyncRangeFields.extend({
  /** Plan the smallest range holding every region out of sync now (first/last ignored). */
  outOfSyncOnly: z.boolean().optional(),
}).refine(...firstNotAfterLast);

export const mirrorsRouter = createTRPCRouter({
  list: protectedProcedure.query(async ({ ctx }) => {
    const { mirrors, unreachable } = await collect(ctx);
    return {
      mirrors: [...mirrors.values()]
        .map((m) => ({
          uuid: m.uuid,
          name: m.name,
          regionCount: m.regionCount,
          inSync: m.inSync,
          percent: m.regionCount ? (100 * m.inSync) / m.regionCount : 100,
          resyncRunning: m.resyncId !== null,
          trend: observeTrend(m.uuid, m.inSync, m.regionCount, ctx.now().getTime()),
          nodes: m.holders.map((h) => h.nodeId),
          logType: m.logType,
          regionBytes: regionBytes(m),
          sizeBytes: m.sizeBytes,
          logDevice: m.logDevice,
          ...shownLegs(m),
        }))
        .sort((a, b) => a.percent - b.percent || a.uuid.localeCompare(b.uuid)),
      unreachable,
    };
  }),

  detail: protectedProcedure.input(ZUuid).query(async ({ ctx, input }) => {
    const { mirrors } = await collect(ctx);
    const m = held(mirrors, input.uuid);
    const progress = await latestProgress(m);
    const all = [...mirrors.values()].map(mirrorView);
    const outOfSync = m.regionCount - m.inSync;
    const bytesPerRegion = regionBytes(m);
    return {
      /** Regions without redundancy now, and whether anything is recovering them. */
      redundancy: {
        outOfSync,
        bytes: bytesPerRegion === null ? null : outOfSync * bytesPerRegion,
        stopped: recoveryStoppedOf(m, progress),
      },
      uuid: m.uuid,
      name: m.name,
      regionCount: m.regionCount,
      inSync: m.inSync,
      nodes: m.holders.map((h) => h.nodeId),
      progress,
      logType: m.logType,
      regionBytes: regionBytes(m),
      sizeBytes: m.sizeBytes,
      logDevice: m.logDevice,
      // Each holder's kernel's legs, and per leg what its device's failure would take.
      views: m.views.map((v) => ({
        nodeId: v.nodeId,
        reason: v.reason,
        legs:
          v.legs?.map((leg) => ({
            ...leg,
            blastRadius: deviceBlastRadius(all, v.nodeId, leg.device).atRisk,
          })) ?? null,
      })),
      blastRadiusCaveat: blastRadiusCaveats.device,
    };
  }),

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
    .query(async ({ ctx, input }) => {
      const { mirrors, unreachable } = await collect(ctx);
      const all = [...mirrors.values()].map(mirrorView);
      const result =
        input.device === undefined
          ? nodeBlastRadius(all, input.nodeId)
          : deviceBlastRadius(all, input.nodeId, input.device);
      return {
        nodeId: input.nodeId,
        device: input.device ?? null,
        ...result,
        caveat: input.device === undefined ? blastRadiusCaveats.node : blastRadiusCaveats.device,
        unreachable,
      };
    }),

  /** The region map, reduced on the agent to about one bucket per canvas pixel. */
  regionMap: protectedProcedure
    .input(ZUuid.extend({ buckets: z.number().int().min(100).max(500_000).default(115_200) }))
    .query(async ({ ctx, input }) => {
      const m = await holderOf(ctx, input.uuid);
      try {
        return await m.holders[0]!.client.resync.regionMap.query(input);
      } catch (error) {
        throw agentError(error);
      }
    }),

  /**
   * Every resync run of this mirror (DASHBOARD.md edge 11) from the resync events in
   * Postgres, so the history survives agent restarts: start, end, range, outcome.
   */
  history: protectedProcedure
    .input(ZUuid.extend({ limit: z.number().int().min(1).max(200).default(20) }))
    .query(async ({ ctx, input }) => {
      const rows = await ctx.db.$queryRaw<
        Array<{
          resync_id: string;
          started: Date;
          ended: Date | null;
          first: bigint | null;
          last: bigint | null;
          outcome: string | null;
          events: bigint;
          node_id: string | null;
        }>
      >`
      SELECT data->>'resyncId' AS resync_id,
             min(occurred_at) AS started,
             max(occurred_at) FILTER (WHERE data->>'what' IN ('done', 'failed', 'cancelled')) AS ended,
             min(region_start) AS first, max(region_end) AS last,
             (array_agg(data->>'what' ORDER BY occurred_at DESC, id DESC)
                FILTER (WHERE data->>'what' IN ('done', 'failed', 'cancelled')))[1] AS outcome,
             count(*) AS events, min(node_id) AS node_id
        FROM events
       WHERE kind = 'resync' AND mirror = ${input.uuid} AND data ? 'resyncId'
       GROUP BY 1
       ORDER BY 2 DESC
       LIMIT ${input.limit}`;
      return rows.map((r) => ({
        id: r.resync_id,
        startedAt: r.started,
        endedAt: r.ended,
        first: r.first === null ? null : Number(r.first),
        last: r.last === null ? null : Number(r.last),
        outcome: r.outcome ?? "running or interrupted",
        events: Number(r.events),
        nodeId: r.node_id,
      }));
    }),

  /** Dry run: what a resync of this range would do, before anything happens. */
  plan: protectedProcedure.input(ZPlan).query(async ({ ctx, input }) => {
    const m = await holderOf(ctx, input.uuid);
    const map = await regionStates(m).catch(() => null);
    const span = map ? outOfSyncSpan(map.states, map.regionsPerBucket, m.regionCount) : null;
    if (input.outOfSyncOnly && !span)
      throw new TRPCError({
        code: map ? "PRECONDITION_FAILED" : "BAD_GATEWAY",
        message: map
          ? "Every region of this mirror is in sync: there is nothing to resync."
          : "The agent did not send the region map, so what is out of sync is not known.",
      });
    const first = input.outOfSyncOnly ? span!.first : (input.first ?? 0);
    const last = input.outOfSyncOnly
      ? span!.last
      : Math.min(input.last ?? m.regionCount - 1, m.regionCount - 1);
    if (first > last)
      throw new TRPCError({
        code: "BAD_REQUEST",
        message: `the mirror has ${m.regionCount} regions (0–${m.regionCount - 1})`,
      });
    const regions = last - first + 1;
    const bytesPerRegion = regionBytes(m);
    // dm-raid1 copies each region from the default mirror (the source leg) to the others; a
    // leg with errors cannot take the copy, so its regions stay out of sync.
    const { legs, legsNodeId, legsUnknownReason } = shownLegs(m);
    const source = legs?.find((l) => l.source) ?? null;
    const progress = await latestProgress(m);
    const rate = input.throttle ?? progress?.rate ?? null;
    const nodes = await ctx.db.node.findMany({
      where: { id: { in: m.holders.map((h) => h.nodeId) } },
      select: { id: true, lastSeenAt: true, sampleIntervalMs: true },
    });
    return {
      uuid: m.uuid,
      first,
      last,
      regions,
      regionBytes: bytesPerRegion,
      /** Bytes copied: regions × region size (the mirror's last region may be shorter). */
      bytes:
        bytesPerRegion === null
          ? null
          : Math.min(
              regions * bytesPerRegion,
              (m.sizeBytes ?? Number.POSITIVE_INFINITY) - first * bytesPerRegion,
            ),
      source: source && { ...source, index: legs!.indexOf(source), nodeId: legsNodeId },
      targets:
        legs
          ?.map((l, index) => ({ ...l, index }))
          .filter((l) => !l.source)
          .map(({ device, label, health, index }) => ({ device, label, health, index })) ?? null,
      legsUnknownReason,
      wholeMirror: first === 0 && last === m.regionCount - 1,
      currentlyOutOfSync: m.regionCount - m.inSync,
      outOfSyncOnly: input.outOfSyncOnly === true,
      /**
       * Without redundancy while it runs: the whole range (a resync marks it out of sync at
       * its start) and whatever outside it is out of sync now; the mirror's in-sync share
       * at the start. Upper bounds when the agent's map holds several regions per bucket.
       */
      unprotectedDuring: (() => {
        const outside = map
          ? outOfSyncOutside(map.states, map.regionsPerBucket, m.regionCount, first, last)
          : null;
        const unprotected = regions + (outside ?? 0);
        return {
          regions: unprotected,
          bytes: bytesPerRegion === null ? null : unprotected * bytesPerRegion,
          percentInSyncAtStart: m.regionCount
            ? (100 * Math.max(0, m.regionCount - unprotected)) / m.regionCount
            : 100,
          exact: map !== null && map.regionsPerBucket === 1,
        };
      })(),
      estimatedSeconds: rate ? regions / rate : null,
      rateBasis: input.throttle ? "throttle" : progress?.rate ? "last measured rate" : null,
      sourceHealth: nodes.map((n) => ({
        nodeId: n.id,
        freshness: freshness(n.lastSeenAt, n.sampleIntervalMs, ctx.now()),
      })),
      runningResync:
        progress && (progress.state === "running" || progress.state === "paused")
          ? progress.id
          : null,
    };
  }),

  /**
   * What a bulk resync of whole mirrors would do, before it is confirmed: per mirror the
   * regions and bytes left without redundancy while it runs and for how long (at the
   * throttle, or the mirror's last measured rate), and which the per-node guard would
   * refuse now.
   */
  bulkPlan: protectedProcedure
    .input(
      z.object({
        uuids: z.array(ZLogUuid.shape.uuid).min(1).max(100),
        throttle: ZRegionsPerSecond.optional(),
      }),
    )
    .query(async ({ ctx, input }) => {
      const { mirrors } = await collect(ctx);
      const running = new Map<string, number>();
      for (const m of mirrors.values()) {
        if (m.resyncId === null) continue;
        for (const h of m.holders) running.set(h.nodeId, (running.get(h.nodeId) ?? 0) + 1);
      }
      const items = await Promise.all(
        input.uuids.map(async (uuid) => {
          const m = mirrors.get(uuid);
          if (!m || m.holders.length === 0)
            return {
              uuid,
              regions: 0,
              bytes: null as number | null,
              estimatedSeconds: null as number | null,
              rateBasis: null as string | null,
              refusal: "no reachable node holds it" as string | null,
              holders: [] as string[],
            };
          const progress = await latestProgress(m);
          const rate = input.throttle ?? progress?.rate ?? null;
          const bytesPerRegion = regionBytes(m);
          return {
            uuid,
            regions: m.regionCount,
            bytes: m.sizeBytes ?? (bytesPerRegion === null ? null : m.regionCount * bytesPerRegion),
            estimatedSeconds: rate ? m.regionCount / rate : null,
            rateBasis: (input.throttle
              ? "throttle"
              : progress?.rate
                ? "last measured rate"
                : null) as string | null,
            refusal: null as string | null,
            holders: m.holders.map((h) => h.nodeId),
          };
        }),
      );
      // The guard as bulkResync applies it, in the same order.
      for (const item of items) {
        if (item.refusal) continue;
        const busy = item.holders.find((n) => (running.get(n) ?? 0) >= maxResyncsPerNode);
        if (busy) {
          item.refusal = `node ${busy} would already run ${running.get(busy)} resyncs (at most ${maxResyncsPerNode})`;
          continue;
        }
        for (const n of item.holders) running.set(n, (running.get(n) ?? 0) + 1);
      }
      const started = items.filter((i) => !i.refusal);
      const known = started.every((i) => i.bytes !== null);
      return {
        items: items.map(({ uuid, regions, bytes, estimatedSeconds, rateBasis, refusal }) => ({
          uuid,
          regions,
          bytes,
          estimatedSeconds,
          rateBasis,
          refusal,
        })),
        totalRegions: started.reduce((n, i) => n + i.regions, 0),
        totalBytes: known ? started.reduce((n, i) => n + (i.bytes ?? 0), 0) : null,
        /** The longest of them (they run side by side), where every one has an estimate. */
        longestSeconds: started.every((i) => i.estimatedSeconds !== null)
          ? Math.max(0, ...started.map((i) => i.estimatedSeconds ?? 0))
          : null,
      };
    }),

  startResync: operatorProcedure.input(ZResyncRange).mutation(async ({ ctx, input }) => {
    const target = `mirror:${input.uuid}`;
    const m = await holderOf(ctx, input.uuid);
    // Guard: at most K running resyncs per node holding this mirror.
    const { mirrors } = await collect(ctx);
    for (const h of m.holders) {
      const running = [...mirrors.values()].filter(
        (x) => x.resyncId !== null && x.holders.some((y) => y.nodeId === h.nodeId),
      ).length;
      if (running >= maxResyncsPerNode) {
        await audit(ctx, {
          action: "mirrors.startResync",
          target,
          params: input,
          outcome: "refused",
          detail: `node ${h.nodeId} already runs ${running} resyncs`,
        });
        throw new TRPCError({
          code: "PRECONDITION_FAILED",
          message: `node ${h.nodeId} already runs ${running} resyncs (at most ${maxResyncsPerNode} per node)`,
        });
      }
    }
    return auditedAgentCall(
      ctx,
      { action: "mirrors.startResync", target, params: input },
      () => m.holders[0]!.client.resync.start.mutate({ ...input, actor: ctx.user.username }),
      (p) => `resync ${p.id}`,
    );
  }),

  /**
   * Bulk resync of whole mirrors with a guard (DASHBOARD.md edge 9): each is started only
   * while its nodes run fewer than `maxResyncsPerNode` resyncs; the rest are refused and
   * say why. Each start is audited on its own.
   */
  bulkResync: operatorProcedure
    .input(
      z.object({
        uuids: z.array(ZLogUuid.shape.uuid).min(1).max(100),
        throttle: ZRegionsPerSecond.optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const { mirrors } = await collect(ctx);
      const running = new Map<string, number>();
      for (const m of mirrors.values()) {
        if (m.resyncId === null) continue;
        for (const h of m.holders) running.set(h.nodeId, (running.get(h.nodeId) ?? 0) + 1);
      }
      const results: Array<{
        uuid: string;
        outcome: "started" | "refused" | "failed";
        detail: string;
      }> = [];
      for (const uuid of input.uuids) {
        const target = `mirror:${uuid}`;
        const m = mirrors.get(uuid);
        const params = { bulk: true, ...(input.throttle ? { throttle: input.throttle } : {}) };
        if (!m || m.holders.length === 0) {
          results.push({ uuid, outcome: "refused", detail: "no reachable node holds it" });
          await audit(ctx, {
            action: "mirrors.startResync",
            target,
            params,
            outcome: "refused",
            detail: "not reachable",
          });
          continue;
        }
        const busy = m.holders.find((h) => (running.get(h.nodeId) ?? 0) >= maxResyncsPerNode);
        if (busy) {
          const detail = `node ${busy.nodeId} already runs ${running.get(busy.nodeId)} resyncs (at most ${maxResyncsPerNode})`;
          results.push({ uuid, outcome: "refused", detail });
          await audit(ctx, {
            action: "mirrors.startResync",
            target,
            params,
            outcome: "refused",
            detail,
          });
          continue;
        }
        try {
          const p = await m.holders[0]!.client.resync.start.mutate({
            uuid,
            ...(input.throttle ? { throttle: input.throttle } : {}),
            actor: ctx.user.username,
          });
          for (const h of m.holders) running.set(h.nodeId, (running.get(h.nodeId) ?? 0) + 1);
          results.push({ uuid, outcome: "started", detail: `resync ${p.id}` });
          await audit(ctx, {
            action: "mirrors.startResync",
            target,
            params,
            outcome: "ok",
            detail: `resync ${p.id}`,
          });
        } catch (error) {
          const e = agentError(error);
          results.push({
            uuid,
            outcome: e.code === "BAD_GATEWAY" ? "failed" : "refused",
            detail: e.message,
          });
          await audit(ctx, {
            action: "mirrors.startResync",
            target,
            params,
            outcome: e.code === "BAD_GATEWAY" ? "failed" : "refused",
            detail: e.message,
          });
        }
      }
      return results;
    }),

  cancel: operatorProcedure.input(ZUuid).mutation(async ({ ctx, input }) => {
    const target = `mirror:${input.uuid}`;
    const m = await holderOf(ctx, input.uuid);
    return auditedAgentCall(
      ctx,
      { action: "mirrors.cancelResync", target },
      () =>
        m.holders[0]!.client.resync.cancel.mutate({ uuid: input.uuid, actor: ctx.user.username }),
      (p) => `resync ${p.id}`,
    );
  }),

  throttle: operatorProcedure
    .input(ZUuid.extend({ regionsPerSecond: ZRegionsPerSecond.nullable() }))
    .mutation(async ({ ctx, input }) => {
      const target = `mirror:${input.uuid}`;
      const m = await holderOf(ctx, input.uuid);
      return auditedAgentCall(
        ctx,
        {
          action: "mirrors.throttleResync",
          target,
          params: { regionsPerSecond: input.regionsPerSecond },
        },
        () => m.holders[0]!.client.resync.throttle.mutate(input),
      );
    }),
});
