"use client";

import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useRef, useState } from "react";
import { useShallow } from "zustand/react/shallow";
import { DateTime } from "~/components/date-time";
import { errorMessage } from "~/lib/errors";
import {
  defaultEventFilters,
  eventListInput,
  eventPageSize,
  eventSeverities as severities,
  type TEventFilters,
} from "~/lib/event-filter";
import { formatRange, formatUtc } from "~/lib/format";
import { useEventFilters } from "~/stores/events";
import { useTRPC } from "~/trpc/react";
import { AckButton } from "./ack-button";
import { Incidents } from "./incidents";

const windows = [
  { label: "1 h", ms: 3_600_000 },
  { label: "24 h", ms: 86_400_000 },
  { label: "7 d", ms: 7 * 86_400_000 },
  { label: "all", ms: null },
];

export interface TEventsInitial {
  /** When the page was rendered: the start of its window is counted from it. */
  windowStart: number;
  device: string;
  kind: string;
  nodeId: string;
  mirror: string;
  text?: string;
  severity?: string[];
  unacknowledgedOnly?: boolean;
  windowMs?: number | null;
}

const windowParam = (ms: number | null) =>
  windows.find((w) => w.ms === ms)?.label.replace(" ", "") ?? "all";

/** The filters as the page's query string (events/page.tsx reads them back). */
function filterQuery(f: {
  windowMs: number | null;
  nodeId: string;
  kind: string;
  severity: string[];
  device: string;
  mirror: string;
  text: string;
  unacknowledgedOnly: boolean;
}): string {
  const q = new URLSearchParams();
  if (f.windowMs !== 7 * 86_400_000) q.set("window", windowParam(f.windowMs));
  if (f.nodeId) q.set("node", f.nodeId);
  if (f.kind) q.set("kind", f.kind);
  if (f.severity.length) q.set("severity", f.severity.join(","));
  if (f.device) q.set("device", f.device);
  if (f.mirror) q.set("mirror", f.mirror);
  if (f.text) q.set("text", f.text);
  if (f.unacknowledgedOnly) q.set("unacked", "1");
  return q.toString();
}

export function EventsView({ initial }: { initial?: TEventsInitial }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const f = useEventFilters(
    useShallow((s) => ({
      windowMs: s.windowMs,
      nodeId: s.nodeId,
      kind: s.kind,
      severity: s.severity,
      device: s.device,
      mirror: s.mirror,
      text: s.text,
      unacknowledgedOnly: s.unacknowledgedOnly,
      set: s.set,
      reset: s.reset,
    })),
  );
  // Filters in the URL (links from other views, a reload) apply once, on arrival…
  const setFilters = useEventFilters((s) => s.set);
  const resetFilters = useEventFilters((s) => s.reset);
  const [arrived, setArrived] = useState(false);
  useEffect(() => {
    resetFilters();
    if (initial) {
      const { windowMs, windowStart: _, ...rest } = initial;
      setFilters({ ...rest, ...(windowMs !== undefined ? { windowMs } : {}) });
    }
    setArrived(true);
  }, [initial, setFilters, resetFilters]);
  // …and until they have, the page shows them as they will be (the server rendered the list
  // with them, and the browser's first render must ask for the same list).
  const shown: TEventFilters = arrived
    ? f
    : {
        ...defaultEventFilters,
        ...(initial
          ? {
              device: initial.device,
              kind: initial.kind,
              nodeId: initial.nodeId,
              mirror: initial.mirror,
              ...(initial.text !== undefined ? { text: initial.text } : {}),
              ...(initial.severity ? { severity: initial.severity } : {}),
              ...(initial.unacknowledgedOnly !== undefined
                ? { unacknowledgedOnly: initial.unacknowledgedOnly }
                : {}),
              ...(initial.windowMs !== undefined ? { windowMs: initial.windowMs } : {}),
            }
          : {}),
      };
  // …and every change is written back, so the address is the view.
  const query = filterQuery(f);
  useEffect(() => {
    if (!arrived) return;
    const url = `${window.location.pathname}${query ? `?${query}` : ""}`;
    if (url !== `${window.location.pathname}${window.location.search}`)
      window.history.replaceState(null, "", url);
  }, [arrived, query]);
  const [expanded, setExpanded] = useState<string | null>(null);
  const [ackMessage, setAckMessage] = useState<string | null>(null);
  const me = useQuery(trpc.session.me.queryOptions());
  const canAck = me.data?.role === "operator" || me.data?.role === "admin";
  const facets = useQuery(trpc.events.facets.queryOptions());
  // The window's start is fixed when the window changes (first: the server's render time),
  // so every page of the list shares one query key.
  const [windowStart, setWindowStart] = useState(() => ({
    windowMs: shown.windowMs,
    at: initial?.windowStart ?? Date.now(),
  }));
  if (windowStart.windowMs !== shown.windowMs)
    setWindowStart({ windowMs: shown.windowMs, at: Date.now() });
  const filter = eventListInput(shown, windowStart.at);
  const events = useInfiniteQuery(
    trpc.events.list.infiniteQueryOptions(
      { ...filter, limit: eventPageSize },
      { getNextPageParam: (last) => last.nextCursor ?? undefined },
    ),
  );
  const ack = useMutation(
    trpc.events.acknowledge.mutationOptions({
      onSuccess: (r, vars) => {
        setAckMessage(
          `Acknowledged ${vars.ids.length.toLocaleString("en-US")} event${vars.ids.length === 1 ? "" : "s"}.`,
        );
        void queryClient.invalidateQueries({ queryKey: trpc.events.list.infiniteQueryKey() });
        return r;
      },
      onError: (e) => setAckMessage(errorMessage(e)),
    }),
  );
  const rows = events.data?.pages.flatMap((p) => p.items) ?? [];
  const now = Date.now();
  const open = rows.filter(
    (e) => !e.acknowledgedAt || (e.ackExpiresAt !== null && e.ackExpiresAt.getTime() <= now),
  );
  const bulkIds = open.slice(0, 500).map((e) => e.id);
  const expandedRow = expanded === null ? null : (rows.find((e) => e.id === expanded) ?? null);

  // A virtualised list: only the rows on screen are in the DOM, however many are loaded.
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => 36,
    overscan: 10,
    // Before the list is measured (and in the server's render): about a screen of rows.
    initialRect: { width: 1000, height: 540 },
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.at(-1)?.index ?? 0;
  useEffect(() => {
    if (lastIndex >= rows.length - 20 && events.hasNextPage && !events.isFetchingNextPage)
      void events.fetchNextPage();
  }, [lastIndex, rows.length, events]);

  const exportQuery = new URLSearchParams();
  for (const [k, v] of Object.entries(filter)) {
    if (Array.isArray(v)) for (const s of v) exportQuery.append(k, s);
    else if (v instanceof Date) exportQuery.set(k, v.toISOString());
    else if (typeof v === "string") exportQuery.set(k, v);
    else if (typeof v === "boolean") exportQuery.set(k, String(v));
  }

  return (
    <>
      <div className="controls">
        <span>
          {windows.map((w) => (
            <button
              key={w.label}
              type="button"
              aria-pressed={shown.windowMs === w.ms}
              onClick={() => f.set({ windowMs: w.ms })}
            >
              {w.label}
            </button>
          ))}
        </span>
        <select
          aria-label="node"
          value={shown.nodeId}
          onChange={(e) => f.set({ nodeId: e.target.value })}
        >
          <option value="">all nodes</option>
          {facets.data?.nodes.map((n) => (
            <option key={n}>{n}</option>
          ))}
        </select>
        <select
          aria-label="kind"
          value={shown.kind}
          onChange={(e) => f.set({ kind: e.target.value })}
        >
          <option value="">all kinds</option>
          {facets.data?.kinds.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
        <select
          aria-label="device"
          value={shown.device}
          onChange={(e) => f.set({ device: e.target.value })}
        >
          <option value="">all devices</option>
          {facets.data?.devices.map((d) => (
            <option key={d}>{d}</option>
          ))}
        </select>
        <select
          aria-label="mirror"
          value={shown.mirror}
          onChange={(e) => f.set({ mirror: e.target.value })}
        >
          <option value="">all mirrors</option>
          {facets.data?.mirrors.map((m) => (
            <option key={m}>{m}</option>
          ))}
        </select>
        <span>
          {severities.map((s) => (
            <button
              key={s}
              type="button"
              aria-pressed={shown.severity.includes(s)}
              onClick={() =>
                f.set({
                  severity: shown.severity.includes(s)
                    ? shown.severity.filter((x) => x !== s)
                    : [...shown.severity, s],
                })
              }
            >
              {s}
            </button>
          ))}
        </span>
        <input
          aria-label="search messages"
          placeholder="search messages"
          value={shown.text}
          onChange={(e) => f.set({ text: e.target.value })}
        />
        <label>
          <input
            type="checkbox"
            checked={shown.unacknowledgedOnly}
            onChange={(e) => f.set({ unacknowledgedOnly: e.target.checked })}
          />{" "}
          unacknowledged only
        </label>
        <button type="button" onClick={f.reset}>
          Reset
        </button>
        <a href={`/api/events/export?format=json&${exportQuery}`} download>
          Export JSON
        </a>
        <a href={`/api/events/export?format=md&${exportQuery}`} download>
          Export Markdown
        </a>
      </div>
      <div className="controls">
        <button
          type="button"
          data-testid="bulk-ack"
          disabled={!canAck || ack.isPending || bulkIds.length === 0}
          aria-describedby={canAck ? undefined : "ack-reason"}
          onClick={() => {
            if (
              window.confirm(
                `Acknowledge ${bulkIds.length.toLocaleString("en-US")} unacknowledged event(s) shown with these filters?`,
              )
            )
              ack.mutate({ ids: bulkIds });
          }}
        >
          Acknowledge all {bulkIds.length.toLocaleString("en-US")} unacknowledged shown
          {open.length > 500 ? " (first 500)" : ""}
        </button>
        {!canAck && (
          <span className="muted" id="ack-reason">
            Acknowledging needs the operator role.
          </span>
        )}
        <span role="status" className="muted">
          {ackMessage}
        </span>
      </div>
      <Incidents />
      {events.isError && <p className="error">Cannot load events: {errorMessage(events.error)}</p>}
      <div className="panel">
        <div className="event-row event-head">
          <span>time</span>
          <span>severity</span>
          <span>kind</span>
          <span>node / device</span>
          <span>message</span>
          <span>ack</span>
        </div>
        <div ref={scrollRef} className="event-scroll" data-testid="events-list">
          <div style={{ height: virtualizer.getTotalSize(), position: "relative" }}>
            {items.map((v) => {
              const e = rows[v.index]!;
              return (
                <div
                  key={e.id}
                  className={`event-row sev-${e.severity}`}
                  data-testid="event-row"
                  data-event-id={e.id}
                  style={{
                    position: "absolute",
                    top: 0,
                    left: 0,
                    right: 0,
                    transform: `translateY(${v.start}px)`,
                  }}
                >
                  <span className="muted">
                    <DateTime value={e.occurredAt} />
                  </span>
                  <span>{e.severity}</span>
                  <span>
                    {e.kind}
                    {e.simulated ? " (simulated)" : ""}
                  </span>
                  <span>
                    {e.nodeId ?? "—"} {e.device ? `/ ${e.device}` : ""}
                  </span>
                  <span className="event-message">
                    <button
                      type="button"
                      className="link-button"
                      aria-expanded={expanded === e.id}
                      aria-controls="event-expanded"
                      title="show the whole message and the kernel's line"
                      onClick={() => setExpanded(expanded === e.id ? null : e.id)}
                    >
                      {e.message}
                      {e.rangeStart !== null
                        ? ` [${formatRange(e.rangeUnit, e.rangeStart, e.rangeEnd)}]`
                        : ""}
                    </button>
                  </span>
                  <span>
                    {e.acknowledgedAt ? (
                      <span
                        className="muted"
                        title={`by ${e.acknowledgedBy} at ${formatUtc(e.acknowledgedAt)}${e.ackNote ? `: ${e.ackNote}` : ""}${e.ackExpiresAt ? `, until ${formatUtc(e.ackExpiresAt)}` : ""}`}
                      >
                        ✓ {e.acknowledgedBy}
                      </span>
                    ) : (
                      <AckButton
                        canAck={canAck}
                        busy={ack.isPending}
                        onAck={(opts) => ack.mutate({ ids: [e.id], ...opts })}
                      />
                    )}
                  </span>
                </div>
              );
            })}
          </div>
        </div>
        {expandedRow && (
          <div className="plan" id="event-expanded" data-testid="event-expanded">
            <p>
              <strong>
                {expandedRow.severity} {expandedRow.kind}
              </strong>{" "}
              <DateTime value={expandedRow.occurredAt} /> · {expandedRow.nodeId ?? "no node"}
              {expandedRow.device ? ` / ${expandedRow.device}` : ""}
              {expandedRow.mirror ? ` · mirror ${expandedRow.mirror}` : ""}
            </p>
            <p style={{ whiteSpace: "pre-wrap", overflowWrap: "anywhere" }}>
              {expandedRow.message}
            </p>
            {expandedRow.rangeStart !== null && (
              <p>
                {formatRange(expandedRow.rangeUnit, expandedRow.rangeStart, expandedRow.rangeEnd)} (
                {expandedRow.count} {expandedRow.rangeUnit ?? "unit"}s)
              </p>
            )}
            {expandedRow.rawLine && (
              <pre style={{ whiteSpace: "pre-wrap", overflowWrap: "anywhere" }}>
                {expandedRow.rawLine}
              </pre>
            )}
            <button type="button" onClick={() => setExpanded(null)}>
              Close
            </button>
          </div>
        )}
        <p className="muted" data-testid="events-count">
          {events.isPending ? "Loading…" : `${rows.length}${events.hasNextPage ? "+" : ""} events`}
        </p>
      </div>
    </>
  );
}
