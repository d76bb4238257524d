import type { TLegHealth, TMirrorLeg } from "@mirrorplane/contracts";

// Blast radius (DASHBOARD.md edge 6): which mirrors lose their last good copy if this
// device or node fails now, from what the agents report (resync.logs with legs). Pure:
// the mirrors router collects the agents' views and calls these.
//
// What the data can say, and what it cannot:
//  * Each node's agent reports its own kernel's view of a mirror's legs: device names are
//    that host's (`dm-3`, `sdb`, a leg file in the simulator) and so is each leg's health.
//    A device is therefore always named together with its node.
//  * A leg with health `A` has had no error since its table was loaded; any other
//    character means dm-raid1 stopped trusting it (KERNEL-SOURCES.md §3.3).
//  * A region out of sync was written (or left) on the default mirror only: dm-raid1 writes
//    NOSYNC regions to the default mirror and recovery copies from it. So while a mirror is
//    out of sync, its source leg holds the only good copy of those regions.
//  * Nodes: legs of a clustered mirror are shared storage, so a node failure loses no leg.
//    What a node failure does lose is what only that node reports or sees.

export type { TLegHealth } from "@mirrorplane/contracts";

/** A leg as an agent reports it (`resync.logs`). */
export type TLegView = TMirrorLeg;

/** One node's view of one mirror. `legs` null: the agent did not report them (`reason`). */
export interface THolderView {
  nodeId: string;
  legs: TLegView[] | null;
  reason: string | null;
  /** The mirror target's table line on that node and its dm uuid (leg replacement). */
  table?: string | null;
  dmUuid?: string | null;
}

export interface TMirrorView {
  uuid: string;
  name: string | null;
  regionCount: number;
  inSync: number;
  regionBytes: number | null;
  views: THolderView[];
}

export type TBlastReason =
  | "last-healthy-leg"
  | "only-copy-of-out-of-sync-regions"
  | "only-holder"
  | "only-node-seeing-a-healthy-leg";

export interface TBlastEntry {
  uuid: string;
  name: string | null;
  reason: TBlastReason;
  /** Regions whose only good copy goes. */
  regionsAtRisk: number;
  bytesAtRisk: number | null;
  /** The legs (by position) on the failing device, in the node's view. */
  legs: number[];
  detail: string;
}

export interface TBlastUnknown {
  uuid: string;
  nodeId: string;
  reason: string;
}

/** Whether `leg` fails when `device` does: the leg itself or anything it is built on. */
export function legOnDevice(leg: TLegView, device: string): boolean {
  return (
    leg.device === device ||
    leg.label === device ||
    leg.majorMinor === device ||
    leg.underlying.includes(device)
  );
}

function atRisk(m: TMirrorView, regions: number) {
  return {
    uuid: m.uuid,
    name: m.name,
    regionsAtRisk: regions,
    bytesAtRisk: m.regionBytes === null ? null : regions * m.regionBytes,
  };
}

/**
 * Mirrors that lose their last good copy if `device` on `nodeId` fails now:
 *  * every leg still without errors (`A`) is on it: the whole mirror;
 *  * else, out of sync and its source leg is on it: the out-of-sync regions.
 * Mirrors whose legs that node does not report are listed as unknown, never as safe.
 */
export function deviceBlastRadius(
  mirrors: readonly TMirrorView[],
  nodeId: string,
  device: string,
): { atRisk: TBlastEntry[]; unknown: TBlastUnknown[] } {
  const entries: TBlastEntry[] = [];
  const unknown: TBlastUnknown[] = [];
  for (const m of mirrors) {
    const view = m.views.find((v) => v.nodeId === nodeId);
    if (!view) continue;
    if (!view.legs) {
      unknown.push({ uuid: m.uuid, nodeId, reason: view.reason ?? "legs not reported" });
      continue;
    }
    const on = view.legs.flatMap((leg, i) => (legOnDevice(leg, device) ? [i] : []));
    if (on.length === 0) continue;
    const healthy = view.legs.flatMap((leg, i) => (leg.health === "A" ? [i] : []));
    const outOfSync = Math.max(0, m.regionCount - m.inSync);
    if (healthy.length > 0 && healthy.every((i) => on.includes(i))) {
      entries.push({
        ...atRisk(m, m.regionCount),
        reason: "last-healthy-leg",
        legs: on,
        detail:
          healthy.length === 1
            ? `leg ${healthy[0]} is its only leg without errors`
            : `legs ${healthy.join(", ")}, all its legs without errors, are on it`,
      });
      continue;
    }
    const source = view.legs.findIndex((l) => l.source);
    if (outOfSync > 0 && source >= 0 && on.includes(source)) {
      entries.push({
        ...atRisk(m, outOfSync),
        reason: "only-copy-of-out-of-sync-regions",
        legs: on,
        detail: `leg ${source} is the resync source: the only good copy of the ${outOfSync.toLocaleString("en-US")} regions not yet in sync`,
      });
    }
  }
  return { atRisk: entries, unknown };
}

/**
 * Mirrors that lose something only `nodeId` provides if it fails now: mirrors no other
 * reachable node reports, and mirrors where only this node's kernel still sees a leg
 * without errors. Legs on shared storage outlive the node; this says nothing about where
 * a leg physically lives, which the agents do not report.
 */
export function nodeBlastRadius(
  mirrors: readonly TMirrorView[],
  nodeId: string,
): { atRisk: TBlastEntry[]; unknown: TBlastUnknown[] } {
  const entries: TBlastEntry[] = [];
  for (const m of mirrors) {
    const view = m.views.find((v) => v.nodeId === nodeId);
    if (!view) continue;
    const outOfSync = Math.max(0, m.regionCount - m.inSync);
    if (m.views.length === 1) {
      entries.push({
        ...atRisk(m, outOfSync),
        reason: "only-holder",
        legs: [],
        detail:
          outOfSync > 0
            ? `no other reachable node holds it: its ${outOfSync.toLocaleString("en-US")} out-of-sync regions would wait for a node to activate it again`
            : "no other reachable node holds it: nobody would serve it until a node activates it again",
      });
      continue;
    }
    const sees = (v: THolderView) => v.legs?.some((l) => l.health === "A") ?? false;
    const others = m.views.filter((v) => v.nodeId !== nodeId && v.legs);
    if (view.legs && others.length > 0 && sees(view) && !others.some(sees)) {
      entries.push({
        ...atRisk(m, m.regionCount),
        reason: "only-node-seeing-a-healthy-leg",
        legs: view.legs.flatMap((l, i) => (l.health === "A" ? [i] : [])),
        detail: `every other node reporting it sees no leg without errors`,
      });
    }
  }
  return { atRisk: entries, unknown: [] };
}

export interface TLegDevice {
  nodeId: string;
  device: string;
  /** The legs on it: directly, or through a device they are built on. */
  legs: { uuid: string; name: string | null; leg: number; health: TLegHealth; source: boolean }[];
}

/** Every device (per node) a leg is on or built on: the devices a blast radius exists for. */
export function legDevices(mirrors: readonly TMirrorView[]): TLegDevice[] {
  const byKey = new Map<string, TLegDevice>();
  for (const m of mirrors) {
    for (const view of m.views) {
      for (const [i, leg] of (view.legs ?? []).entries()) {
        for (const device of new Set([leg.device, ...leg.underlying])) {
          const key = `${view.nodeId}\u0000${device}`;
          const entry = byKey.get(key) ?? { nodeId: view.nodeId, device, legs: [] };
          entry.legs.push({
            uuid: m.uuid,
            name: m.name,
            leg: i,
            health: leg.health,
            source: leg.source,
          });
          byKey.set(key, entry);
        }
      }
    }
  }
  return [...byKey.values()].sort(
    (a, b) => a.nodeId.localeCompare(b.nodeId) || a.device.localeCompare(b.device),
  );
}

/** What the blast radius can and cannot say (shown beside it). */
export const blastRadiusCaveats = {
  device:
    "From each node's own kernel view: a mirror is listed when every leg without errors is on this device (or built on it), or when it is out of sync and its resync source leg is. Devices are named as that node names them.",
  node: "Legs of a clustered mirror are shared storage: a node failure loses no leg. Listed: mirrors no other reachable node holds, and mirrors where only this node still sees a leg without errors. Where legs physically live is not reported by the agents.",
} as const;
