"use client";

import { useMutation, useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useState } from "react";
import { formatPercent } from "~/lib/eta";
import { useTRPC } from "~/trpc/react";

export function MirrorsTable() {
  const trpc = useTRPC();
  const list = useQuery({ ...trpc.mirrors.list.queryOptions(), refetchInterval: 2_000 });
  const me = useQuery(trpc.session.me.queryOptions());
  const canOperate = me.data?.role === "operator" || me.data?.role === "admin";
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirming, setConfirming] = useState(false);
  const bulk = useMutation(
    trpc.mirrors.bulkResync.mutationOptions({
      onSuccess: () => {
        setConfirming(false);
        setSelected(new Set());
      },
    }),
  );
  const toggle = (uuid: string) =>
    setSelected((prev) => {
      const next = new Set(prev);
      if (next.has(uuid)) next.delete(uuid);
      else next.add(uuid);
      return next;
    });
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
              <th />
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
                  <input
                    type="checkbox"
                    aria-label={`select ${m.uuid}`}
                    checked={selected.has(m.uuid)}
                    disabled={!canOperate}
                    title={canOperate ? "select for a bulk resync" : "needs the operator role"}
                    onChange={() => toggle(m.uuid)}
                  />
                </td>
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
        <div className="controls" style={{ marginTop: 12 }}>
          <button
            type="button"
            disabled={!canOperate || selected.size === 0}
            title={
              !canOperate
                ? "needs the operator role"
                : selected.size === 0
                  ? "select mirrors first"
                  : "plan a resync of the selected mirrors"
            }
            onClick={() => setConfirming(true)}
          >
            Resync selected ({selected.size})…
          </button>
          {confirming && (
            <span data-testid="bulk-confirm">
              This resyncs {selected.size} whole mirror(s) — {[...selected].join(", ")} — at most 2
              running per node at once (the rest are refused and listed).{" "}
              <button
                type="button"
                disabled={bulk.isPending}
                onClick={() => bulk.mutate({ uuids: [...selected] })}
              >
                Confirm
              </button>{" "}
              <button type="button" onClick={() => setConfirming(false)}>
                Back
              </button>
            </span>
          )}
        </div>
        {bulk.data && (
          <ul data-testid="bulk-results">
            {bulk.data.map((r) => (
              <li key={r.uuid} className={r.outcome === "started" ? "" : "error"}>
                {r.uuid}: {r.outcome} — {r.detail}
              </li>
            ))}
          </ul>
        )}
        {bulk.isError && <p className="error">{bulk.error.message}</p>}
        {list.data.mirrors.length === 0 && (
          <p className="muted">
            No agent reports a mirror (no cluster-log server or simulator is running).
          </p>
        )}
      </div>
    </>
  );
}
