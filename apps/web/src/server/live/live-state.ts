/**
 * The live stream's model (DASHBOARD.md "our edge" 12: changes, not snapshots, with a
 * version number; a snapshot only after a gap). Pure: the hub feeds it snapshots it read
 * from Postgres and the agents, it answers with the changes between two of them.
 */
import type { TResyncProgress } from "@mirrorplane/contracts";
import type { TMirrorTrend } from "../domain/sync-observer";
import type { TFreshness } from "../freshness";

export interface LiveNode {
  hostname: string;
  freshness: TFreshness;
  lastSeenAt: number;
}

/** A mirror's sync state as the mirror list and the overview show it (fleet.ts `collect`). */
export interface LiveMirrorSync {
  regionCount: number;
  inSync: number;
  /** The running resync (null: none runs). */
  resyncId: string | null;
  trend: TMirrorTrend;
}

export interface LiveMirror {
  sync: LiveMirrorSync;
  /** The latest resync run as the mirror's first holder reports it (null: none since it started). */
  resync: TResyncProgress | null;
  /**
   * A digest of what is not carried (holders, each holder's legs and their health, name,
   * log type and device, sizes): when it changes, clients refetch what shows them.
   */
  facts: string;
}

export interface LiveSnapshot {
  nodes: Record<string, LiveNode>;
  mirrors: Record<string, LiveMirror>;
  /** Nodes whose agent could not be asked for its mirrors (sorted). */
  unreachable: string[];
  /** Newest event id (string: a bigint), or null when there are none. */
  latestEventId: string | null;
  latestAuditId: string | null;
}

export type LiveChange =
  | { type: "node"; id: string; value: LiveNode | null }
  /** The node reported again (its samples are stored), nothing else about it changed. */
  | { type: "report"; id: string; lastSeenAt: number }
  | { type: "mirror-sync"; uuid: string; value: LiveMirrorSync }
  | { type: "mirror-resync"; uuid: string; value: TResyncProgress | null }
  | { type: "mirror-facts"; uuid: string; facts: string }
  /** No reachable agent holds the mirror any more. */
  | { type: "mirror-gone"; uuid: string }
  | { type: "unreachable"; nodeIds: string[] }
  | { type: "events"; latestEventId: string | null }
  | { type: "audit"; latestAuditId: string | null };

export type LiveMessage =
  | { version: number; kind: "snapshot"; snapshot: LiveSnapshot }
  | { version: number; kind: "changes"; changes: LiveChange[] };

export const emptySnapshot: LiveSnapshot = {
  nodes: {},
  mirrors: {},
  unreachable: [],
  latestEventId: null,
  latestAuditId: null,
};

function sameNode(a: LiveNode, b: LiveNode): boolean {
  return a.freshness === b.freshness && a.hostname === b.hostname;
}

function sameSync(a: LiveMirrorSync, b: LiveMirrorSync): boolean {
  return (
    a.inSync === b.inSync &&
    a.regionCount === b.regionCount &&
    a.resyncId === b.resyncId &&
    a.trend === b.trend
  );
}

function sameResync(a: TResyncProgress | null, b: TResyncProgress | null): boolean {
  if (a === null || b === null) return a === b;
  // Flat records of numbers and strings from the same agent code: compared field by field.
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys)
    if (a[k as keyof TResyncProgress] !== b[k as keyof TResyncProgress]) return false;
  return true;
}

export function diffSnapshots(prev: LiveSnapshot, next: LiveSnapshot): LiveChange[] {
  const changes: LiveChange[] = [];
  for (const [id, node] of Object.entries(next.nodes)) {
    const before = prev.nodes[id];
    if (!before || !sameNode(before, node)) changes.push({ type: "node", id, value: node });
    // A report alone is not a node change: only pages that show its samples care.
    else if (before.lastSeenAt !== node.lastSeenAt)
      changes.push({ type: "report", id, lastSeenAt: node.lastSeenAt });
  }
  for (const id of Object.keys(prev.nodes)) {
    if (!(id in next.nodes)) changes.push({ type: "node", id, value: null });
  }
  for (const [uuid, m] of Object.entries(next.mirrors)) {
    const before = prev.mirrors[uuid];
    if (!before || !sameSync(before.sync, m.sync))
      changes.push({ type: "mirror-sync", uuid, value: m.sync });
    if (!before || !sameResync(before.resync, m.resync))
      changes.push({ type: "mirror-resync", uuid, value: m.resync });
    if (!before || before.facts !== m.facts)
      changes.push({ type: "mirror-facts", uuid, facts: m.facts });
  }
  for (const uuid of Object.keys(prev.mirrors)) {
    if (!(uuid in next.mirrors)) changes.push({ type: "mirror-gone", uuid });
  }
  if (prev.unreachable.join("\n") !== next.unreachable.join("\n"))
    changes.push({ type: "unreachable", nodeIds: next.unreachable });
  if (prev.latestEventId !== next.latestEventId)
    changes.push({ type: "events", latestEventId: next.latestEventId });
  if (prev.latestAuditId !== next.latestAuditId)
    changes.push({ type: "audit", latestAuditId: next.latestAuditId });
  return changes;
}

const unknownMirror: LiveMirror = {
  sync: { regionCount: 0, inSync: 0, resyncId: null, trend: "unknown" },
  resync: null,
  facts: "",
};

export function applyChanges(snapshot: LiveSnapshot, changes: LiveChange[]): LiveSnapshot {
  const next: LiveSnapshot = {
    ...snapshot,
    nodes: { ...snapshot.nodes },
    mirrors: { ...snapshot.mirrors },
  };
  for (const c of changes) {
    switch (c.type) {
      case "node":
        if (c.value) next.nodes[c.id] = c.value;
        else delete next.nodes[c.id];
        break;
      case "report": {
        const node = next.nodes[c.id];
        if (node) next.nodes[c.id] = { ...node, lastSeenAt: c.lastSeenAt };
        break;
      }
      case "mirror-sync":
        next.mirrors[c.uuid] = { ...(next.mirrors[c.uuid] ?? unknownMirror), sync: c.value };
        break;
      case "mirror-resync":
        next.mirrors[c.uuid] = { ...(next.mirrors[c.uuid] ?? unknownMirror), resync: c.value };
        break;
      case "mirror-facts":
        next.mirrors[c.uuid] = { ...(next.mirrors[c.uuid] ?? unknownMirror), facts: c.facts };
        break;
      case "mirror-gone":
        delete next.mirrors[c.uuid];
        break;
      case "unreachable":
        next.unreachable = c.nodeIds;
        break;
      case "events":
        next.latestEventId = c.latestEventId;
        break;
      case "audit":
        next.latestAuditId = c.latestAuditId;
        break;
    }
  }
  return next;
}

/**
 * Keeps the current snapshot, a version that grows by one per non-empty change set, and
 * the last `historySize` change sets, so a client reconnecting with a recent version gets
 * only what it missed and an older one gets a snapshot.
 */
export class LiveLog {
  #version = 0;
  #snapshot: LiveSnapshot = emptySnapshot;
  #history: Array<{ version: number; changes: LiveChange[] }> = [];

  constructor(private readonly historySize = 64) {}

  get version(): number {
    return this.#version;
  }

  get snapshot(): LiveSnapshot {
    return this.#snapshot;
  }

  /** Records a newly read snapshot; returns the message to broadcast, or null if nothing changed. */
  update(next: LiveSnapshot): LiveMessage | null {
    const changes = diffSnapshots(this.#snapshot, next);
    this.#snapshot = next;
    if (changes.length === 0) return null;
    this.#version++;
    this.#history.push({ version: this.#version, changes });
    if (this.#history.length > this.historySize) this.#history.shift();
    return { version: this.#version, kind: "changes", changes };
  }

  /** What a (re)connecting client needs: the changes since `since`, or a snapshot after a gap. */
  catchUp(since: number | null): LiveMessage[] {
    if (since !== null && since === this.#version) return [];
    const oldest = this.#history[0]?.version;
    if (since !== null && since < this.#version && oldest !== undefined && since >= oldest - 1) {
      return this.#history
        .filter((h) => h.version > since)
        .map((h) => ({ version: h.version, kind: "changes" as const, changes: h.changes }));
    }
    return [{ version: this.#version, kind: "snapshot", snapshot: this.#snapshot }];
  }
}
