import { AppError, type ZResyncRange } from "@mirrorplane/contracts";
import type { z } from "zod";
import type { ContextInner, ContextUser } from "../trpc";
import { audited, refusal } from "./audit";
import { agentCall, collect, holderOf } from "./fleet";
import { busyNode, countStarted, maxResyncsPerNode, runningPerNode } from "./resync-plan";

// The operator's resync changes, each through the one audited path (audit.ts): start (one,
// or whole mirrors in bulk under the per-node guard), cancel, throttle.

type TOperatorContext = ContextInner & { user: ContextUser };

export async function startResync(ctx: TOperatorContext, input: z.infer<typeof ZResyncRange>) {
  const m = await holderOf(ctx, input.uuid);
  const { mirrors } = await collect(ctx);
  return audited(
    ctx,
    { action: "mirrors.startResync", target: `mirror:${input.uuid}`, params: input },
    async () => {
      // Guard: at most K running resyncs per node holding this mirror.
      for (const h of m.holders) {
        const running = [...mirrors.values()].filter(
          (x) => x.resyncId !== null && x.holders.some((y) => y.nodeId === h.nodeId),
        ).length;
        if (running >= maxResyncsPerNode)
          throw refusal(
            "PRECONDITION_FAILED",
            `node ${h.nodeId} already runs ${running} resyncs (at most ${maxResyncsPerNode} per node)`,
            { detail: `node ${h.nodeId} already runs ${running} resyncs` },
          );
      }
      return agentCall(() =>
        m.holders[0]!.client.resync.start.mutate({ ...input, actor: ctx.user.username }),
      );
    },
    (p) => ({ detail: `resync ${p.id}` }),
  );
}

/**
 * Bulk resync of whole mirrors with a guard (DASHBOARD.md edge 9): each is started only
 * while its nodes run fewer than `maxResyncsPerNode` resyncs; the rest are refused and
 * say why. Each start is audited on its own.
 */
export async function bulkResync(
  ctx: TOperatorContext,
  input: { uuids: string[]; throttle?: number | undefined },
) {
  const { mirrors } = await collect(ctx);
  const running = runningPerNode(mirrors);
  const results: Array<{
    uuid: string;
    outcome: "started" | "refused" | "failed";
    detail: string;
  }> = [];
  for (const uuid of input.uuids) {
    const m = mirrors.get(uuid);
    const params = { bulk: true, ...(input.throttle ? { throttle: input.throttle } : {}) };
    try {
      const p = await audited(
        ctx,
        { action: "mirrors.startResync", target: `mirror:${uuid}`, params },
        async () => {
          if (!m || m.holders.length === 0)
            throw refusal("NOT_FOUND", "no reachable node holds it", { detail: "not reachable" });
          const holders = m.holders.map((h) => h.nodeId);
          const busy = busyNode(running, holders);
          if (busy)
            throw refusal(
              "PRECONDITION_FAILED",
              `node ${busy} already runs ${running.get(busy)} resyncs (at most ${maxResyncsPerNode})`,
            );
          const started = await agentCall(() =>
            m.holders[0]!.client.resync.start.mutate({
              uuid,
              ...(input.throttle ? { throttle: input.throttle } : {}),
              actor: ctx.user.username,
            }),
          );
          countStarted(running, holders);
          return started;
        },
        (p) => ({ detail: `resync ${p.id}` }),
      );
      results.push({ uuid, outcome: "started", detail: `resync ${p.id}` });
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      results.push({ uuid, outcome: error.outcome, detail: error.message });
    }
  }
  return results;
}

export async function cancelResync(ctx: TOperatorContext, uuid: string) {
  const m = await holderOf(ctx, uuid);
  return audited(
    ctx,
    { action: "mirrors.cancelResync", target: `mirror:${uuid}` },
    () =>
      agentCall(() =>
        m.holders[0]!.client.resync.cancel.mutate({ uuid, actor: ctx.user.username }),
      ),
    (p) => ({ detail: `resync ${p.id}` }),
  );
}

export async function throttleResync(
  ctx: TOperatorContext,
  input: { uuid: string; regionsPerSecond: number | null },
) {
  const m = await holderOf(ctx, input.uuid);
  return audited(
    ctx,
    {
      action: "mirrors.throttleResync",
      target: `mirror:${input.uuid}`,
      params: { regionsPerSecond: input.regionsPerSecond },
    },
    () => agentCall(() => m.holders[0]!.client.resync.throttle.mutate(input)),
  );
}
