import type { TSeverity } from "@mirrorplane/db/enums";
import type { MembershipEvent } from "../clusterlog/server.ts";
import type { THostEvent } from "../events/event.ts";

// Cluster membership changes (joins, leaves, failures with who declared them, each log's
// serving node) as events (issue 14): every member reports what it applied, so the
// dashboard shows each member's account. Pure. Keys come from the order's seq, so a
// member that restarts and replays the same history re-derives the same keys.

export function membershipEvents(
  recent: readonly MembershipEvent[],
  ctx: { readonly nodeId: string; readonly self: number; readonly now: number },
): THostEvent[] {
  return recent.map((m) => {
    let severity: TSeverity = "notice";
    let message: string;
    switch (m.kind) {
      case "node-join":
        message = `cluster member ${m.node} joined`;
        break;
      case "node-leave":
        message = `cluster member ${m.node} left`;
        break;
      case "node-failed": {
        const by = m.by === null ? "" : ` by node ${m.by}`;
        severity = m.node === ctx.self ? "error" : "warning";
        message =
          m.node === ctx.self
            ? `this member (${m.node}) was declared failed${by}: fenced out, re-joining`
            : `cluster member ${m.node} declared failed${by}`;
        break;
      }
      case "server":
        message =
          m.node === null
            ? `log ${m.uuid} has no serving node`
            : `log ${m.uuid} served by node ${m.node}${m.by === null ? "" : ` (was node ${m.by})`}`;
        break;
    }
    return {
      key: `${ctx.nodeId}:membership:${m.seq}:${m.kind}:${m.node ?? "none"}:${m.uuid ?? ""}`,
      kind: "agent",
      severity,
      source: "agent",
      occurredAt: m.at,
      device: null,
      message,
      count: 1,
      simulated: false,
      data: {
        what: "membership",
        change: m.kind,
        node: m.node,
        by: m.by,
        seq: m.seq,
        ...(m.uuid ? { uuid: m.uuid } : {}),
      },
    };
  });
}
