"use client";

import { useQuery } from "@tanstack/react-query";
import { DateTime } from "~/components/date-time";
import { errorMessage } from "~/lib/errors";
import { useFallbackInterval } from "~/stores/live";
import { useTRPC } from "~/trpc/react";

const changeText = {
  "node-join": "joined",
  "node-leave": "left",
  "node-failed": "declared failed",
  server: "now serves",
} as const;

/** Cluster membership per agent (nodes.membership): members, who serves, the order, changes. */
export function Membership() {
  const trpc = useTRPC();
  // Membership changes arrive as events and node freshness on the live stream, which refetch
  // this; the order's connection state is not announced by either: 30 s while live.
  const m = useQuery({
    ...trpc.nodes.membership.queryOptions(),
    refetchInterval: useFallbackInterval(10_000, 30_000),
  });
  if (m.isPending) return null;
  if (m.isError)
    return <p className="error">Cannot read cluster membership: {errorMessage(m.error)}</p>;
  return (
    <div className="panel" data-testid="membership">
      <h2>Cluster membership</h2>
      {m.data.map((n) => (
        <div key={n.nodeId} data-testid="membership-node" data-node-id={n.nodeId}>
          <h3 style={{ fontSize: 13 }}>{n.nodeId}</h3>
          {!n.membership ? (
            <p className="muted">{n.note}.</p>
          ) : (
            <>
              <p>
                Member {n.membership.memberId} of {n.membership.members.length} (
                {n.membership.members.join(", ")}); order{" "}
                <span
                  data-testid="membership-order"
                  className={n.membership.order.connected ? "" : "error"}
                >
                  {n.membership.order.kind === "jetstream" ? "NATS JetStream" : "in-process"},{" "}
                  {n.membership.order.connected ? "connected" : "not connected"}
                </span>
                .
              </p>
              {Object.keys(n.membership.servedBy).length > 0 && (
                <table>
                  <thead>
                    <tr>
                      <th>Log (mirror)</th>
                      <th>Served by member</th>
                    </tr>
                  </thead>
                  <tbody>
                    {Object.entries(n.membership.servedBy).map(([uuid, member]) => (
                      <tr key={uuid}>
                        <td>{uuid}</td>
                        <td className="num">{member}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
              {n.membership.recent.length > 0 && (
                <ul data-testid="membership-changes">
                  {n.membership.recent
                    .slice()
                    .reverse()
                    .map((r) => (
                      <li key={r.seq} className={r.kind === "node-failed" ? "error" : ""}>
                        <DateTime value={r.at} />: member {r.node ?? "?"} {changeText[r.kind]}
                        {r.kind === "server" && r.uuid ? ` ${r.uuid}` : ""}
                        {r.by !== null && r.kind === "node-failed" ? ` by member ${r.by}` : ""}
                      </li>
                    ))}
                </ul>
              )}
            </>
          )}
        </div>
      ))}
    </div>
  );
}
