import { deviceEventKinds, memoryEventKinds } from "@mirrorplane/contracts";
import { trpcErrorCode } from "~/lib/errors";
import {
  blastRadiusCaveats,
  deviceBlastRadius,
  legDevices,
  nodeBlastRadius,
} from "../blast-radius";
import { eventSelect, serializeEvent } from "../event-rows";
import type { ContextInner } from "../trpc";
import { collect, mirrorView } from "./fleet";

// Every memory and device event, recoveries included (the time axis counts only the errors).
const memoryKinds = [...memoryEventKinds];
const deviceKinds = [...deviceEventKinds];

/**
 * Every device (per node) a mirror leg is on or built on, the legs on it, and its blast
 * radius (DASHBOARD.md edge 6): the mirrors that lose their last good copy if it fails now.
 */
export async function mirrorLegs(ctx: ContextInner) {
  const { mirrors, unreachable } = await collect(ctx);
  const all = [...mirrors.values()].map(mirrorView);
  return {
    devices: legDevices(all).map((d) => ({
      ...d,
      blastRadius: deviceBlastRadius(all, d.nodeId, d.device).atRisk,
    })),
    // Per node holding a mirror: what only it provides (nodeBlastRadius says what that is).
    nodes: [...new Set(all.flatMap((m) => m.views.map((v) => v.nodeId)))].sort().map((nodeId) => ({
      nodeId,
      blastRadius: nodeBlastRadius(all, nodeId).atRisk,
    })),
    nodeCaveat: blastRadiusCaveats.node,
    // Mirrors whose legs a node's agent did not report: their devices are not listed.
    unknown: all.flatMap((m) =>
      m.views
        .filter((v) => !v.legs)
        .map((v) => ({ uuid: m.uuid, nodeId: v.nodeId, reason: v.reason })),
    ),
    unreachable,
    caveat: blastRadiusCaveats.device,
  };
}

/**
 * Memory and devices (DASHBOARD.md): per device its current health (the last failure or
 * recovery reported), failure counts, and the memory-failure ranges with the mirror
 * regions they touch, so a targeted resync is one click away.
 */
export async function devicesSummary(ctx: ContextInner, input: { days?: number } | undefined) {
  const since = new Date(ctx.now().getTime() - (input?.days ?? 7) * 86_400_000);
  const [devices, memory, sources] = await Promise.all([
    ctx.db.$queryRaw<
      Array<{
        node_id: string | null;
        device: string;
        last_kind: string;
        last_at: Date;
        last_message: string;
        failures: bigint;
      }>
    >`
    SELECT DISTINCT ON (node_id, device)
           node_id, device, kind AS last_kind, occurred_at AS last_at, message AS last_message,
           count(*) FILTER (WHERE kind = 'device_failure') OVER (PARTITION BY node_id, device) AS failures
      FROM events
     WHERE device IS NOT NULL AND kind = ANY(${deviceKinds}::text[]) AND occurred_at >= ${since}
     ORDER BY node_id, device, occurred_at DESC, id DESC`,
    ctx.db.event.findMany({
      where: { kind: { in: memoryKinds }, occurredAt: { gte: since } },
      orderBy: [{ occurredAt: "desc" }, { id: "desc" }],
      take: 200,
      select: eventSelect,
    }),
    ctx.db.node.findMany({ select: { id: true, apiUrl: true }, orderBy: { id: "asc" } }),
  ]);
  // Which sources each agent found at start (EDAC, badblocks, kmsg…), asked live.
  const probes = await Promise.all(
    sources.map(async (n) => {
      try {
        const status = await ctx.agents.client(n.apiUrl).events.status.query();
        return { nodeId: n.id, sources: status.sources, error: null };
      } catch (error) {
        const code = trpcErrorCode(error);
        const message =
          code === "NOT_IMPLEMENTED"
            ? "this agent does no host reporting"
            : (error as Error).message;
        return { nodeId: n.id, sources: null, error: message };
      }
    }),
  );
  return {
    devices: devices.map((d) => ({
      nodeId: d.node_id,
      device: d.device,
      health: d.last_kind === "device_failure" ? ("failed" as const) : ("recovered" as const),
      lastAt: d.last_at,
      lastMessage: d.last_message,
      failures: Number(d.failures),
    })),
    memory: memory.map(serializeEvent),
    probes,
  };
}
