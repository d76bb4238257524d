"use client";

import { useQuery } from "@tanstack/react-query";
import { formatDateTime, formatTimeOfDay, formatUtc } from "~/lib/format";
import { useEventFilters } from "~/stores/events";
import { useFallbackInterval } from "~/stores/live";
import { useTRPC } from "~/trpc/react";

/** Related events grouped into incidents, newest first, each exportable on its own. */
export function Incidents() {
  const trpc = useTRPC();
  const set = useEventFilters((s) => s.set);
  const incidents = useQuery({
    ...trpc.events.incidents.queryOptions({ days: 7, gapMinutes: 10, limit: 20 }),
    // New events invalidate it over the live stream (live-bridge.tsx); poll only without it.
    refetchInterval: useFallbackInterval(10_000),
  });
  if (!incidents.data?.length) return null;
  const exportHref = (i: (typeof incidents.data)[number], format: "json" | "md") => {
    // incident=1: the self-contained incident export (events, operator actions, charts).
    const q = new URLSearchParams({
      format,
      incident: "1",
      from: i.started.toISOString(),
      to: i.ended.toISOString(),
    });
    if (i.nodeId) q.set("nodeId", i.nodeId);
    if (i.mirror) q.set("mirror", i.mirror);
    else if (i.device) q.set("device", i.device);
    else q.set("kind", i.subject);
    return `/api/events/export?${q}`;
  };
  return (
    <div className="panel" data-testid="incidents">
      <h2>Incidents (related events of one node and subject, 7 days)</h2>
      <table>
        <thead>
          <tr>
            <th>Subject</th>
            <th>Node</th>
            <th>From – to</th>
            <th>Events</th>
            <th>Open</th>
            <th>Worst</th>
            <th>Kinds</th>
            <th>Export</th>
          </tr>
        </thead>
        <tbody>
          {incidents.data.map((i) => (
            <tr key={`${i.nodeId}/${i.subject}/${i.started.toISOString()}`}>
              <td>
                <button
                  type="button"
                  title="show these events"
                  onClick={() =>
                    set({
                      ...(i.mirror
                        ? { mirror: i.mirror }
                        : i.device
                          ? { device: i.device }
                          : { kind: i.subject }),
                      nodeId: i.nodeId ?? "",
                    })
                  }
                >
                  {i.subject}
                </button>
              </td>
              <td>{i.nodeId ?? "—"}</td>
              <td className="muted">
                <span title={`${formatUtc(i.started)} – ${formatUtc(i.ended)}`}>
                  <span suppressHydrationWarning>
                    {formatDateTime(i.started)} – {formatTimeOfDay(i.ended)}
                  </span>
                </span>
              </td>
              <td className="num">{i.events}</td>
              <td className="num">{i.unacknowledged}</td>
              <td>{i.worst}</td>
              <td>{i.kinds.join(", ")}</td>
              <td>
                <a href={exportHref(i, "json")} download>
                  JSON
                </a>{" "}
                <a href={exportHref(i, "md")} download>
                  Markdown
                </a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
