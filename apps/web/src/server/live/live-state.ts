/**
 * The live stream's model (DASHBOARD.md "our edge" 12: changes, not snapshots, with a
 * version number; a snapshot only after a gap). Pure: the hub feeds it snapshots it read
 * from Postgres, it answers with the changes between two of them.
 */
import type { TFreshness } from "../freshness";

export interface LiveNode {
  hostname: string;
  freshness: TFreshness;
  lastSeenAt: number;
}

export interface LiveSnapshot {
  nodes: Record<string, LiveNode>;
  /** Newest event id (string: a bigint), or null when there are none. */
  latestEventId: string | null;
  latestAuditId: string | null;
}

export type LiveChange =
  | { type: "node"; id: string; value: LiveNode | null }
  | { type: "events"; latestEventId: string | null }
  | { type: "audit"; latestAuditId: string | null };

export type LiveMessage =
  | { version: number; kind: "snapshot"; snapshot: LiveSnapshot }
  | { version: number; kind: "changes"; changes: LiveChange[] };

export const emptySnapshot: LiveSnapshot = { nodes: {}, latestEventId: null, latestAuditId: null };

function sameNode(a: LiveNode, b: LiveNode): boolean {
  // lastSeenAt moves on every report; only a freshness or name change is news.
  return a.freshness === b.freshness && a.hostname === b.hostname;
}

export function diffSnapshots(prev: LiveSnapshot, next: LiveSnapshot): LiveChange[] {
  const changes: LiveChange[] = [];
  for (const [id, node] of Object.entries(next.nodes)) {
    const before = prev.nodes[id];
    if (!before || !sameNode(before, node)) changes.push({ type: "node", id, value: node });
  }
  for (const id of Object.keys(prev.nodes)) {
    if (!(id in next.nodes)) changes.push({ type: "node", id, value: null });
  }
  if (prev.latestEventId !== next.latestEventId)
    changes.push({ type: "events", latestEventId: next.latestEventId });
  if (prev.latestAuditId !== next.latestAuditId)
    changes.push({ type: "audit", latestAuditId: next.latestAuditId });
  return changes;
}

export function applyChanges(snapshot: LiveSnapshot, changes: LiveChange[]): LiveSnapshot {
  const next: LiveSnapshot = { ...snapshot, nodes: { ...snapshot.nodes } };
  for (const c of changes) {
    if (c.type === "node") {
      if (c.value) next.nodes[c.id] = c.value;
      else delete next.nodes[c.id];
    } else if (c.type === "events") next.latestEventId = c.latestEventId;
    else next.latestAuditId = c.latestAuditId;
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
