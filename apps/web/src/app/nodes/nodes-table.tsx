"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { FreshnessBadge } from "~/components/freshness-badge";
import { errorMessage } from "~/lib/errors";
import { formatAge } from "~/lib/format";
import { useFallbackInterval } from "~/stores/live";
import { useTRPC } from "~/trpc/react";

export function NodesTable() {
  const trpc = useTRPC();
  // Node changes arrive on the live stream; poll only while it is down.
  const refetchInterval = useFallbackInterval(5_000);
  const nodes = useQuery({ ...trpc.nodes.list.queryOptions(), refetchInterval });
  if (nodes.isPending) return <p className="muted">Loading nodes…</p>;
  if (nodes.isError) return <p className="error">Cannot load nodes: {errorMessage(nodes.error)}</p>;
  if (nodes.data.length === 0)
    return (
      <p className="muted">
        No agent has reported yet. Start one with `npm start` or `npx mirrorplane-agent`.
      </p>
    );
  const now = new Date();
  return (
    <div className="panel">
      <table data-testid="nodes-table">
        <thead>
          <tr>
            <th>Node</th>
            <th>Host</th>
            <th>Status</th>
            <th>Last seen</th>
            <th>Interval</th>
            <th>Kernel</th>
            <th>Agent</th>
          </tr>
        </thead>
        <tbody>
          {nodes.data.map((n) => (
            <tr key={n.id} data-testid="node-row" data-node-id={n.id}>
              <td>
                <Link prefetch={false} href={`/khugepaged?node=${encodeURIComponent(n.id)}`}>
                  {n.id}
                </Link>
              </td>
              <td>{n.hostname}</td>
              <td>
                <FreshnessBadge value={n.freshness} />
              </td>
              <td title={n.lastSeenAt.toISOString()} suppressHydrationWarning>
                {formatAge(n.lastSeenAt, now)}
              </td>
              <td className="num">{n.sampleIntervalMs / 1000}s</td>
              <td>{n.kernelRelease ?? "—"}</td>
              <td>{n.agentVersion}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
