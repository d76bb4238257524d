"use client";

import { useInfiniteQuery, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useVirtualizer } from "@tanstack/react-virtual";
import { useEffect, useMemo, useRef } from "react";
import { useShallow } from "zustand/react/shallow";
import { useEventFilters } from "~/stores/events";
import { useTRPC } from "~/trpc/react";
import { AckButton } from "./ack-button";
import { Incidents } from "./incidents";

const severities = ["critical", "error", "warning", "notice", "info", "debug"] as const;
const windows = [
  { label: "1 h", ms: 3_600_000 },
  { label: "24 h", ms: 86_400_000 },
  { label: "7 d", ms: 7 * 86_400_000 },
  { label: "all", ms: null },
];

export function EventsView({
  initial,
}: {
  initial?: { device: string; kind: string; nodeId: string; mirror: string };
}) {
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
  // Filters in the URL (links from other views) apply once, on arrival.
  const setFilters = useEventFilters((s) => s.set);
  useEffect(() => {
    if (initial && (initial.device || initial.kind || initial.nodeId || initial.mirror))
      setFilters(initial);
  }, [initial, setFilters]);
  const me = useQuery(trpc.session.me.queryOptions());
  const canAck = me.data?.role === "operator" || me.data?.role === "admin";
  const facets = useQuery(trpc.events.facets.queryOptions());
  // The window's start is fixed when the filter changes, so pages share one query key.
  const from = useMemo(
    () => (f.windowMs === null ? undefined : new Date(Date.now() - f.windowMs)),
    [f.windowMs],
  );
  const filter = {
    ...(from ? { from } : {}),
    ...(f.nodeId ? { nodeId: f.nodeId } : {}),
    ...(f.kind ? { kind: f.kind } : {}),
    ...(f.severity.length ? { severity: f.severity as (typeof severities)[number][] } : {}),
    ...(f.device ? { device: f.device } : {}),
    ...(f.mirror ? { mirror: f.mirror } : {}),
    ...(f.text ? { text: f.text } : {}),
    ...(f.unacknowledgedOnly ? { acknowledged: false } : {}),
  };
  const events = useInfiniteQuery(
    trpc.events.list.infiniteQueryOptions(
      { ...filter, limit: 200 },
      { getNextPageParam: (last) => last.nextCursor ?? undefined },
    ),
  );
  const ack = useMutation(
    trpc.events.acknowledge.mutationOptions({
      onSuccess: () =>
        queryClient.invalidateQueries({ queryKey: trpc.events.list.infiniteQueryKey() }),
    }),
  );
  const rows = events.data?.pages.flatMap((p) => p.items) ?? [];

  // A virtualised list: only the rows on screen are in the DOM, however many are loaded.
  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: rows.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => 36,
    overscan: 10,
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
  }

  return (
    <>
      <div className="controls">
        <span>
          {windows.map((w) => (
            <button
              key={w.label}
              type="button"
              aria-pressed={f.windowMs === w.ms}
              onClick={() => f.set({ windowMs: w.ms })}
            >
              {w.label}
            </button>
          ))}
        </span>
        <select
          aria-label="node"
          value={f.nodeId}
          onChange={(e) => f.set({ nodeId: e.target.value })}
        >
          <option value="">all nodes</option>
          {facets.data?.nodes.map((n) => (
            <option key={n}>{n}</option>
          ))}
        </select>
        <select aria-label="kind" value={f.kind} onChange={(e) => f.set({ kind: e.target.value })}>
          <option value="">all kinds</option>
          {facets.data?.kinds.map((k) => (
            <option key={k}>{k}</option>
          ))}
        </select>
        <select
          aria-label="device"
          value={f.device}
          onChange={(e) => f.set({ device: e.target.value })}
        >
          <option value="">all devices</option>
          {facets.data?.devices.map((d) => (
            <option key={d}>{d}</option>
          ))}
        </select>
        <select
          aria-label="mirror"
          value={f.mirror}
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
              aria-pressed={f.severity.includes(s)}
              onClick={() =>
                f.set({
                  severity: f.severity.includes(s)
                    ? f.severity.filter((x) => x !== s)
                    : [...f.severity, s],
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
          value={f.text}
          onChange={(e) => f.set({ text: e.target.value })}
        />
        <label>
          <input
            type="checkbox"
            checked={f.unacknowledgedOnly}
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
      <Incidents />
      {events.isError && <p className="error">Cannot load events: {events.error.message}</p>}
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
                  <span className="muted" title={e.occurredAt.toISOString()}>
                    {e.occurredAt.toLocaleString("en-GB")}
                  </span>
                  <span>{e.severity}</span>
                  <span>
                    {e.kind}
                    {e.simulated ? " (simulated)" : ""}
                  </span>
                  <span>
                    {e.nodeId ?? "—"} {e.device ? `/ ${e.device}` : ""}
                  </span>
                  <span title={e.rawLine ?? e.message}>
                    {e.message}
                    {e.rangeStart !== null
                      ? ` [${e.rangeUnit ?? "range"} ${e.rangeStart}–${e.rangeEnd}]`
                      : ""}
                  </span>
                  <span>
                    {e.acknowledgedAt ? (
                      <span
                        className="muted"
                        title={`by ${e.acknowledgedBy} at ${e.acknowledgedAt.toISOString()}${e.ackNote ? `: ${e.ackNote}` : ""}${e.ackExpiresAt ? `, until ${e.ackExpiresAt.toISOString()}` : ""}`}
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
        <p className="muted" data-testid="events-count">
          {events.isPending ? "Loading…" : `${rows.length}${events.hasNextPage ? "+" : ""} events`}
        </p>
      </div>
    </>
  );
}
