"use client";

import { useMutation, useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { type ReactNode, useState } from "react";
import { useShallow } from "zustand/react/shallow";
import { LegList } from "~/components/leg-health";
import { formatBytes } from "~/lib/bytes";
import { formatPercent } from "~/lib/eta";
import { matchesFilter, sortMirrors } from "~/lib/mirror-rows";
import { type TMirrorSort, useMirrorsView } from "~/stores/mirrors-view";
import { useTRPC } from "~/trpc/react";

const nowrap = { whiteSpace: "nowrap" } as const;

/** A column header that sorts: its state is in aria-sort, its button says what it does. */
function SortHeader({ column, children }: { column: TMirrorSort; children: ReactNode }) {
  const { sort, descending, toggleSort } = useMirrorsView(
    useShallow((s) => ({ sort: s.sort, descending: s.descending, toggleSort: s.toggleSort })),
  );
  const active = sort === column;
  return (
    <th aria-sort={active ? (descending ? "descending" : "ascending") : "none"}>
      <button
        type="button"
        className="sort-header"
        data-testid={`sort-${column}`}
        title="sort by this column (again: reverse, a third time: least in sync first)"
        onClick={() => toggleSort(column)}
        style={{
          border: "none",
          background: "none",
          padding: 0,
          font: "inherit",
          color: "inherit",
          textTransform: "inherit",
          letterSpacing: "inherit",
          textAlign: "inherit",
          cursor: "pointer",
        }}
      >
        {children}
        {active ? (descending ? " ▼" : " ▲") : ""}
      </button>
    </th>
  );
}

export function MirrorsTable() {
  const trpc = useTRPC();
  const list = useQuery({ ...trpc.mirrors.list.queryOptions(), refetchInterval: 2_000 });
  const me = useQuery(trpc.session.me.queryOptions());
  const canOperate = me.data?.role === "operator" || me.data?.role === "admin";
  const { sort, descending, filter, setFilter } = useMirrorsView(
    useShallow((s) => ({
      sort: s.sort,
      descending: s.descending,
      filter: s.filter,
      setFilter: s.setFilter,
    })),
  );
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
  const rows = sortMirrors(
    list.data.mirrors.filter((m) => matchesFilter(m, filter)),
    sort,
    descending,
  );
  return (
    <>
      {list.data.unreachable.length > 0 && (
        <p className="error" data-testid="unreachable">
          Not reachable (their mirrors are not listed):{" "}
          {list.data.unreachable.map((u) => `${u.nodeId} (${u.error})`).join(", ")}
        </p>
      )}
      <div className="panel">
        <div className="controls">
          <label>
            Filter{" "}
            <input
              type="search"
              aria-label="filter mirrors"
              data-testid="mirrors-filter"
              value={filter}
              placeholder="name, node, log type, leg device; D: a dead leg"
              onChange={(e) => setFilter(e.target.value)}
              style={{ width: 380 }}
            />
          </label>
          {filter && (
            <span className="muted">
              {rows.length} of {list.data.mirrors.length} mirrors
            </span>
          )}
        </div>
        <table data-testid="mirrors-table">
          <thead>
            <tr>
              <th />
              <SortHeader column="mirror">Mirror (log uuid)</SortHeader>
              <SortHeader column="size">Size</SortHeader>
              <SortHeader column="regionSize">Region size</SortHeader>
              <SortHeader column="logType">Log</SortHeader>
              <SortHeader column="regions">Regions</SortHeader>
              <SortHeader column="inSync">In sync</SortHeader>
              <SortHeader column="legs">Legs (health)</SortHeader>
              <th>State</th>
              <th>Trend</th>
              <th>Nodes</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((m) => (
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
                  {m.name && <div className="muted">{m.name}</div>}
                </td>
                <td className="num" data-testid="mirror-size" style={nowrap}>
                  {formatBytes(m.sizeBytes)}
                </td>
                <td className="num" data-testid="mirror-region-size" style={nowrap}>
                  {formatBytes(m.regionBytes)}
                </td>
                <td style={nowrap}>{m.logType ?? "—"}</td>
                <td className="num">{m.regionCount.toLocaleString("en-US")}</td>
                <td className="num" style={nowrap}>
                  {formatPercent(m.percent, m.inSync === m.regionCount)}
                </td>
                <td>
                  {m.legs ? (
                    <LegList legs={m.legs} />
                  ) : (
                    <span className="muted" title={m.legsUnknownReason ?? undefined}>
                      not reported
                    </span>
                  )}
                </td>
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
        {list.data.mirrors.length > 0 && rows.length === 0 && (
          <p className="muted">No mirror matches the filter.</p>
        )}
        {list.data.mirrors.length === 0 && (
          <p className="muted">
            No agent reports a mirror (no cluster-log server or simulator is running).
          </p>
        )}
      </div>
    </>
  );
}
