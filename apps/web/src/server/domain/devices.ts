import { AppError, deviceEventKinds, memoryEventKinds } from "@mirrorplane/contracts";
import { trpcErrorCode } from "~/lib/errors";
import {
  blastRadiusCaveats,
  deviceBlastRadius,
  legDevices,
  nodeBlastRadius,
} from "../blast-radius";
import { eventSelect, serializeEvent } from "../event-rows";
import { freshness } from "../freshness";
import type { ContextInner } from "../trpc";
import { agentCall, collect, mirrorView } from "./fleet";

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

/**
 * Each node's disks with SMART (issue 13), asked live of its agent: sysfs as of now, SMART
 * as of its last read, with the freshness of that read against the agent's SMART interval.
 * A node that does not answer, or an agent without the inventory, says so in a sentence.
 */
export async function diskInventory(ctx: ContextInner, input: { nodeId?: string | undefined }) {
  const nodes = await ctx.db.node.findMany({
    where: input.nodeId ? { id: input.nodeId } : {},
    orderBy: { id: "asc" },
    select: { id: true, apiUrl: true, lastSeenAt: true, sampleIntervalMs: true },
  });
  const now = ctx.now();
  return {
    nodes: await Promise.all(
      nodes.map(async (n) => {
        const nodeFreshness = freshness(n.lastSeenAt, n.sampleIntervalMs, now);
        const unread = { nodeId: n.id, nodeFreshness, inventory: null };
        if (nodeFreshness === "unknown")
          return {
            ...unread,
            error: "its agent has not reported for three intervals: its disks are not known now",
          };
        try {
          const inventory = await ctx.agents.client(n.apiUrl).disks.list.query();
          const interval = inventory.smartctl.intervalMs;
          return {
            nodeId: n.id,
            nodeFreshness,
            inventory: {
              ...inventory,
              disks: inventory.disks.map((d) => ({
                ...d,
                smartFreshness:
                  d.smart.readAt && interval ? freshness(d.smart.readAt, interval, now) : null,
              })),
            },
            error: null,
          };
        } catch (error) {
          return {
            ...unread,
            error:
              trpcErrorCode(error) === "NOT_IMPLEMENTED"
                ? "this agent reports no disks (an agent older than the disk inventory, or a simulated cluster member)"
                : `its agent did not answer: ${(error as Error).message}`,
          };
        }
      }),
    ),
  };
}

/** Reads SMART on one node now (one disk, or all), through its agent. */
export async function refreshSmart(
  ctx: ContextInner,
  input: { nodeId: string; device?: string | undefined },
) {
  const node = await ctx.db.node.findUnique({
    where: { id: input.nodeId },
    select: { apiUrl: true },
  });
  if (!node) throw new AppError("NOT_FOUND", `no node ${input.nodeId}`);
  const inventory = await agentCall(() =>
    ctx.agents
      .client(node.apiUrl)
      .disks.refreshSmart.mutate(input.device ? { device: input.device } : {}),
  );
  return { nodeId: input.nodeId, disks: inventory.disks.length, readAt: inventory.readAt };
}
