import { TRPCError } from "@trpc/server";
import { z } from "zod";
import type { AgentClient } from "../agents";
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

type Logs = Awaited<ReturnType<AgentClient["resync"]["logs"]["query"]>>;

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
          logs: (await client.resync.logs.query()) as Logs,
          error: null,
        };
      } catch (error) {
        const code = (error as { data?: { code?: string } }).data?.code;
        // An agent without a cluster-log server simply holds no mirror.
        if (code === "NOT_IMPLEMENTED") return { node: n.id, logs: [] as Logs, error: null };
        return { node: n.id, logs: null, error: (error as Error).message };
      }
    }),
  );
  const mirrors = new Map<
    string,
    {
      uuid: string;
      regionCount: number;
      inSync: number;
      resyncId: string | null;
      holders: Holder[];
    }
  >();
  for (const r of results) {
    if (!r.logs || !("client" in r) || !r.client) continue;
    for (const log of r.logs) {
      const m = mirrors.get(log.uuid) ?? {
        uuid: log.uuid,
        regionCount: log.regionCount,
        inSync: log.inSync,
        resyncId: log.resyncId,
        holders: [],
      };
      m.holders.push({ nodeId: r.node, client: r.client });
      // Replicas agree; if a report is behind, show the less-synced (never the rosier) one.
      m.inSync = Math.min(m.inSync, log.inSync);
      m.resyncId ??= log.resyncId;
      mirrors.set(log.uuid, m);
    }
  }
  return {
    mirrors,
    unreachable: results.filter((r) => r.error).map((r) => ({ nodeId: r.node, error: r.error! })),
  };
}

async function holderOf(ctx: ContextInner, uuid: string) {
  const { mirrors } = await collect(ctx);
  const m = mirrors.get(uuid);
  if (!m || m.holders.length === 0)
    throw new TRPCError({ code: "NOT_FOUND", message: `no reachable node holds mirror ${uuid}` });
  return m;
}

function agentError(error: unknown): TRPCError {
  const code = (error as { data?: { code?: string } }).data?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === "BAD_REQUEST" || code === "CONFLICT" || code === "NOT_FOUND")
    return new TRPCError({ code, message });
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

const ZUuid = z.object({ uuid: z.string().min(1).max(128) });
const ZRange = ZUuid.extend({
  first: z.number().int().min(0).optional(),
  last: z.number().int().min(0).optional(),
  throttle: z.number().int().min(1).max(10_000_000).optional(),
}).refine(
  (r) => r.first === undefined || r.last === undefined || r.first <= r.last,
  "first must not be after last",
);

export const mirrorsRouter = createTRPCRouter({
  list: protectedProcedure.query(async ({ ctx }) => {
    const { mirrors, unreachable } = await collect(ctx);
    return {
      mirrors: [...mirrors.values()]
        .map((m) => ({
          uuid: m.uuid,
          regionCount: m.regionCount,
          inSync: m.inSync,
          percent: m.regionCount ? (100 * m.inSync) / m.regionCount : 100,
          resyncRunning: m.resyncId !== null,
          trend: observeTrend(m.uuid, m.inSync, m.regionCount, ctx.now().getTime()),
          nodes: m.holders.map((h) => h.nodeId),
        }))
        .sort((a, b) => a.percent - b.percent || a.uuid.localeCompare(b.uuid)),
      unreachable,
    };
  }),

  detail: protectedProcedure.input(ZUuid).query(async ({ ctx, input }) => {
    const m = await holderOf(ctx, input.uuid);
    const progress = await m.holders[0]!.client.resync.progress.query({ uuid: input.uuid }).catch(
      () => null,
    );
    return {
      uuid: m.uuid,
      regionCount: m.regionCount,
      inSync: m.inSync,
      nodes: m.holders.map((h) => h.nodeId),
      progress,
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
  plan: protectedProcedure.input(ZRange).query(async ({ ctx, input }) => {
    const m = await holderOf(ctx, input.uuid);
    const first = input.first ?? 0;
    const last = Math.min(input.last ?? m.regionCount - 1, m.regionCount - 1);
    if (first > last)
      throw new TRPCError({
        code: "BAD_REQUEST",
        message: `the mirror has ${m.regionCount} regions (0–${m.regionCount - 1})`,
      });
    const regions = last - first + 1;
    const progress = await m.holders[0]!.client.resync.progress.query({ uuid: input.uuid }).catch(
      () => null,
    );
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
      wholeMirror: first === 0 && last === m.regionCount - 1,
      currentlyOutOfSync: m.regionCount - m.inSync,
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

  startResync: operatorProcedure.input(ZRange).mutation(async ({ ctx, input }) => {
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
        uuids: z.array(z.string().min(1).max(128)).min(1).max(100),
        throttle: z.number().int().min(1).max(10_000_000).optional(),
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
    .input(ZUuid.extend({ regionsPerSecond: z.number().int().min(1).max(10_000_000).nullable() }))
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
