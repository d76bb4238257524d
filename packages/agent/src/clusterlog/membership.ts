import type { NodeId, Operation } from "@mirrorplane/clusterlog";

// Cluster membership as every member derives it from the ordered stream: which node ids
// have joined and not left or failed, and which run ("incarnation") of each. It is
// replicated state of the bus itself — a joiner gets it with the snapshot — and is what
// failure detection and the choice of the one declaring survivor are computed from.
// Pure: no clock, no I/O.

/** A node id together with the run of the agent process that joined under it. */
export interface Member {
  readonly node: NodeId;
  readonly incarnation: string;
}

export class MembershipView {
  readonly #members = new Map<NodeId, string>();

  constructor(members: readonly Member[] = []) {
    for (const m of members) this.#members.set(m.node, m.incarnation);
  }

  /** Members in node-id order (the first is cmirrord's server, spec §4.1). */
  members(): Member[] {
    return [...this.#members.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([node, incarnation]) => ({ node, incarnation }));
  }

  incarnationOf(node: NodeId): string | undefined {
    return this.#members.get(node);
  }

  has(node: NodeId): boolean {
    return this.#members.has(node);
  }

  /**
   * Apply an ordered operation. A leave or failure naming an incarnation removes the node
   * only if that is still its current run: a late duplicate for an earlier run (P1) must
   * not remove the node that has since re-joined. "" names whatever run is current.
   * Returns whether membership changed.
   */
  apply(op: Operation, incarnation: string): boolean {
    switch (op.kind) {
      case "node-join": {
        const before = this.#members.get(op.node);
        this.#members.set(op.node, incarnation);
        return before !== incarnation;
      }
      case "node-leave":
      case "node-failed": {
        const current = this.#members.get(op.node);
        if (current === undefined) return false;
        if (incarnation !== "" && incarnation !== current) return false;
        this.#members.delete(op.node);
        return true;
      }
      default:
        return false;
    }
  }
}

/**
 * Which survivor declares the failures in `dead`: the lowest member whose heartbeat is
 * fresh — the same rule cmirrord uses to pick its server (spec §4.1), so every survivor
 * that sees the same heartbeats picks the same one. Null when none is left.
 */
export function failureDeclarer(
  members: readonly Member[],
  dead: ReadonlySet<NodeId>,
): NodeId | null {
  for (const m of members) if (!dead.has(m.node)) return m.node;
  return null;
}

/**
 * Message ids of membership operations. They name the incarnation, so two survivors that
 * declare the same failure publish the same id and JetStream keeps one (duplicate window),
 * while the failure of a later run of the same node id is a different message.
 */
export const membershipMsgId = {
  join: (node: NodeId, incarnation: string) => `join:${node}:${incarnation}`,
  leave: (node: NodeId, incarnation: string) => `leave:${node}:${incarnation}`,
  failed: (node: NodeId, incarnation: string) => `failed:${node}:${incarnation}`,
};

/** A fresh incarnation token: unique per agent start, printable, at most 64 characters. */
export function newIncarnation(now: number, random: () => number): string {
  const suffix = Math.floor(random() * 36 ** 6)
    .toString(36)
    .padStart(6, "0");
  return `${now.toString(36)}-${suffix}`;
}
