"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { formatPercent } from "~/lib/eta";
import { useTRPC } from "~/trpc/react";

export function MirrorsTable() {
  const trpc = useTRPC();
  const list = useQuery({ ...trpc.mirrors.list.queryOptions(), refetchInterval: 2_000 });
  if (list.isPending) return <p className="muted">Asking the agents…</p>;
  if (list.isError) return <p className="error">Cannot list mirrors: {list.error.message}</p>;
  return (
    <>
      {list.data.unreachable.length > 0 && (
        <p className="error" data-testid="unreachable">
          Not reachable (their mirrors are not listed):{" "}
          {list.data.unreachable.map((u) => `${u.nodeId} (${u.error})`).join(", ")}
        </p>
      )}
      <div className="panel">
        <table data-testid="mirrors-table">
          <thead>
            <tr>
              <th>Mirror (log uuid)</th>
              <th>Regions</th>
              <th>In sync</th>
              <th>State</th>
              <th>Trend</th>
              <th>Nodes</th>
            </tr>
          </thead>
          <tbody>
            {list.data.mirrors.map((m) => (
              <tr key={m.uuid} data-testid="mirror-row" data-uuid={m.uuid}>
                <td>
                  <Link href={`/mirrors/${encodeURIComponent(m.uuid)}`}>{m.uuid}</Link>
                </td>
                <td className="num">{m.regionCount.toLocaleString("en-US")}</td>
                <td className="num">{formatPercent(m.percent, m.inSync === m.regionCount)}</td>
                <td>
                  {m.resyncRunning ? (
                    <span className="badge late">resyncing</span>
                  ) : m.inSync === m.regionCount ? (
                    <span className="badge fresh">in sync</span>
                  ) : (
                    <span className="badge late">out of sync</span>
                  )}
                </td>
                <td title="recovering: gaining regions; stalled: out of sync and nothing gained for a minute">
                  {m.trend}
                </td>
                <td>{m.nodes.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.data.mirrors.length === 0 && (
          <p className="muted">
            No agent reports a mirror (no cluster-log server or simulator is running).
          </p>
        )}
      </div>
    </>
  );
}
