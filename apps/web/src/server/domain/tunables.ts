import { AppError } from "@mirrorplane/contracts";
import { trpcErrorCode } from "~/lib/errors";
import { freshness } from "../freshness";
import type { ContextInner, ContextUser } from "../trpc";
import { audited, refusal } from "./audit";

// khugepaged's tunables on a node: read live through its agent (the last stored values when
// it is away), and changed through the one audited path.

/** The kernel's choice in a `[always] madvise never` file, or the file's text. */
export function selectedChoice(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  const m = /\[([^\]]+)\]/.exec(text);
  return m ? m[1]! : text.trim();
}

/** The value `name` has now, as the agent reports it (null: not reported). */
export function currentTunable(
  name: string,
  live: { tunables: Record<string, number | null>; thp: Record<string, string | number | null> },
): string | null {
  if (name.startsWith("khugepaged/")) {
    const v = live.tunables[name.slice("khugepaged/".length)];
    return v === null || v === undefined ? null : String(v);
  }
  if (name === "enabled") return selectedChoice(live.thp.enabled as string | null);
  if (name === "defrag") return selectedChoice(live.thp.defrag as string | null);
  if (name === "shmem_enabled") return selectedChoice(live.thp.shmemEnabled as string | null);
  return null; // per-size files (hugepages-*/enabled) are not reported by the agent
}

async function nodeApi(ctx: ContextInner, nodeId: string) {
  const node = await ctx.db.node.findUnique({
    where: { id: nodeId },
    select: { apiUrl: true, lastSeenAt: true, sampleIntervalMs: true },
  });
  if (!node) throw new AppError("NOT_FOUND", `no node ${nodeId}`);
  return node;
}

/**
 * Changes a tunable on a node. The agent validates exactly as the kernel does and
 * refuses with the kernel's reason; both outcomes are audited here, and the agent
 * records the change (old → new, who) as an event.
 */
export async function setTunable(
  ctx: ContextInner & { user: ContextUser },
  input: { nodeId: string; name: string; value: string; reason?: string | undefined },
) {
  const client = ctx.agents.client((await nodeApi(ctx, input.nodeId)).apiUrl);
  const reason = input.reason ? { reason: input.reason } : {};
  const entry = {
    action: "khugepaged.setTunable",
    target: `node:${input.nodeId}:${input.name}`,
    params: { value: input.value, ...reason },
  };
  // A write of the value it already has changes nothing: not written, not reported as a change.
  const before = await client.khugepaged.current
    .query()
    .then((live) => currentTunable(input.name, live))
    .catch(() => null);
  if (before !== null && before === input.value.trim())
    return audited(
      ctx,
      entry,
      async () => ({
        name: input.name,
        old: before as string | null,
        new: before,
        changedAt: ctx.now(),
        changed: false,
      }),
      () => ({ detail: `unchanged: already ${before}` }),
    );
  return audited(
    ctx,
    entry,
    async () => {
      try {
        const change = await client.khugepaged.setTunable.mutate({
          name: input.name,
          value: input.value,
          actor: { id: ctx.user.id, name: ctx.user.username },
          ...reason,
        });
        return { ...change, changed: selectedChoice(change.old) !== selectedChoice(change.new) };
      } catch (error) {
        // The kernel's (or the agent's) refusal as it is; anything else: the agent is away.
        const message = error instanceof Error ? error.message : String(error);
        const code = trpcErrorCode(error);
        const refused = code === "BAD_REQUEST" || code === "NOT_IMPLEMENTED";
        throw refusal(
          refused ? "BAD_REQUEST" : "BAD_GATEWAY",
          refused ? message : `agent unreachable: ${message}`,
          { detail: message, params: { value: input.value } },
        );
      }
    },
    (change) => ({
      params: { value: input.value, old: change.old, ...reason },
      ...(change.changed ? {} : { detail: `unchanged: already ${change.new}` }),
    }),
  );
}

/** Current tunables and counters, read live by the node's agent from sysfs. */
export async function currentKhugepaged(ctx: ContextInner, input: { nodeId: string }) {
  const node = await nodeApi(ctx, input.nodeId);
  try {
    const live = await ctx.agents.client(node.apiUrl).khugepaged.current.query();
    return { source: "agent" as const, error: null, ...live };
  } catch (error) {
    // The agent is unreachable: say so, and fall back to the last stored values.
    const latest = await ctx.db.sample.findMany({
      where: { nodeId: input.nodeId, at: node.lastSeenAt },
      select: { series: true, value: true },
    });
    const tunables: Record<string, number | null> = {};
    const vmstat: Record<string, number> = {};
    let pagesCollapsed: number | null = null;
    let fullScans: number | null = null;
    for (const { series, value } of latest) {
      if (series === "khugepaged.pages_collapsed") pagesCollapsed = value;
      else if (series === "khugepaged.full_scans") fullScans = value;
      else if (series.startsWith("khugepaged.")) tunables[series.slice(11)] = value;
      else if (series.startsWith("vmstat.")) vmstat[series.slice(7)] = value;
    }
    return {
      source: "database" as const,
      error: `agent unreachable: ${(error as Error).message}`,
      available: latest.length > 0,
      tunables,
      counters: { pagesCollapsed, fullScans },
      thp: { enabled: null, defrag: null, shmemEnabled: null, hpagePmdSize: null },
      vmstat,
      readAt: node.lastSeenAt,
      freshness: freshness(node.lastSeenAt, node.sampleIntervalMs, ctx.now()),
    };
  }
}
