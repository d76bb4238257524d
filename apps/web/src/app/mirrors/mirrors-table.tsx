"use client";

import { useMutation, useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { type ReactNode, useState } from "react";
import { useShallow } from "zustand/react/shallow";
import { LegList } from "~/components/leg-health";
import { formatBytes } from "~/lib/bytes";
import { errorMessage } from "~/lib/errors";
import { formatDuration, formatPercent } from "~/lib/eta";
import { matchesFilter, sortMirrors } from "~/lib/mirror-rows";
import { formatExposure } from "~/lib/protection";
import { useFallbackInterval } from "~/stores/live";
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
  // Sync state is patched in from the live stream; poll only while it is down.
  const list = useQuery({
    ...trpc.mirrors.list.queryOptions(),
    refetchInterval: useFallbackInterval(2_000),
  });
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
  const [bulkThrottle, setBulkThrottle] = useState("");
  const throttleNumber =
    /^\d+$/.test(bulkThrottle) && Number(bulkThrottle) >= 1 ? Number(bulkThrottle) : undefined;
  const bulkPlan = useQuery({
    ...trpc.mirrors.bulkPlan.queryOptions({
      uuids: [...selected].length ? [...selected] : ["-"],
      ...(throttleNumber ? { throttle: throttleNumber } : {}),
    }),
    enabled: confirming && selected.size > 0,
  });
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
  if (list.isError) return <p className="error">Cannot list mirrors: {errorMessage(list.error)}</p>;
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
              style={{ width: "min(380px, calc(100vw - 110px))" }}
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
                  <Link prefetch={false} href={`/mirrors/${encodeURIComponent(m.uuid)}`}>
                    {m.uuid}
                  </Link>
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
          {!canOperate && (
            <span className="muted" data-testid="disabled-reason">
              Selecting and resyncing mirrors needs the operator role.
            </span>
          )}
          {confirming && (
            <div
              data-testid="bulk-confirm"
              className="plan"
              role="alertdialog"
              aria-label="bulk resync"
            >
              <p>
                <strong>
                  Resync {selected.size} whole mirror{selected.size === 1 ? "" : "s"}:
                </strong>{" "}
                each drops to about 0 % in sync at its start — every region is without redundancy
                until it is copied again. At most 2 run per node at once; the rest are refused and
                listed.
              </p>
              {bulkPlan.isError && <p className="error">{errorMessage(bulkPlan.error)}</p>}
              {bulkPlan.data && (
                <>
                  <ul data-testid="bulk-plan">
                    {bulkPlan.data.items.map((i) => (
                      <li key={i.uuid} className={i.refusal ? "muted" : ""}>
                        {i.uuid}:{" "}
                        {i.refusal
                          ? `would be refused — ${i.refusal}`
                          : `${formatExposure(i)} unprotected for ${
                              i.estimatedSeconds === null
                                ? "as long as the copy takes (no estimate: no throttle, no measured rate)"
                                : `about ${formatDuration(i.estimatedSeconds)} (at the ${i.rateBasis})`
                            }`}
                      </li>
                    ))}
                  </ul>
                  <p data-testid="bulk-unprotected">
                    <strong>Without redundancy meanwhile:</strong>{" "}
                    {formatExposure({
                      regions: bulkPlan.data.totalRegions,
                      bytes: bulkPlan.data.totalBytes,
                    })}
                    {bulkPlan.data.longestSeconds !== null
                      ? `, for up to about ${formatDuration(bulkPlan.data.longestSeconds)}`
                      : ""}
                    .
                  </p>
                </>
              )}
              <div className="controls">
                <label>
                  throttle each (regions/s){" "}
                  <input
                    type="number"
                    min={1}
                    value={bulkThrottle}
                    placeholder="none"
                    onChange={(e) => setBulkThrottle(e.target.value)}
                    style={{ width: 90 }}
                  />
                </label>
                <button
                  type="button"
                  // biome-ignore lint/a11y/noAutofocus: the confirmation takes the focus it asks for
                  autoFocus
                  disabled={bulk.isPending}
                  onClick={() =>
                    bulk.mutate({
                      uuids: [...selected],
                      ...(throttleNumber ? { throttle: throttleNumber } : {}),
                    })
                  }
                >
                  Confirm: resync {selected.size} mirror{selected.size === 1 ? "" : "s"}
                </button>
                <button type="button" onClick={() => setConfirming(false)}>
                  Back
                </button>
              </div>
            </div>
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
        {bulk.isError && <p className="error">{errorMessage(bulk.error)}</p>}
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
