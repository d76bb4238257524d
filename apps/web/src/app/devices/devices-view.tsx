"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { useTRPC } from "~/trpc/react";

export function DevicesView() {
  const trpc = useTRPC();
  const summary = useQuery({
    ...trpc.devices.summary.queryOptions({ days: 7 }),
    refetchInterval: 5_000,
  });
  if (summary.isPending) return <p className="muted">Loading…</p>;
  if (summary.isError) return <p className="error">{summary.error.message}</p>;
  const s = summary.data;
  return (
    <>
      <div className="panel">
        <h2>Sources each agent found</h2>
        <table data-testid="sources-table">
          <tbody>
            {s.probes.map((p) => (
              <tr key={p.nodeId}>
                <td>{p.nodeId}</td>
                <td>
                  {p.sources ? (
                    Object.entries(p.sources).map(([name, ok]) => (
                      <span
                        key={name}
                        className={`badge ${ok ? "fresh" : "unknown"}`}
                        title={ok ? "available" : "absent on this host"}
                        style={{ marginRight: 4 }}
                      >
                        {name}
                      </span>
                    ))
                  ) : (
                    <span className="muted">{p.error}</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <div>
        <div className="panel">
          <h2>Devices with failures (7 days)</h2>
          {s.devices.length === 0 ? (
            <p className="muted">No device failure reported.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th>Node</th>
                  <th>Device</th>
                  <th>Health</th>
                  <th>Failures</th>
                  <th>Last report</th>
                </tr>
              </thead>
              <tbody>
                {s.devices.map((d) => (
                  <tr key={`${d.nodeId}/${d.device}`}>
                    <td>{d.nodeId}</td>
                    <td>
                      <Link href={`/events?device=${encodeURIComponent(d.device)}`}>
                        {d.device}
                      </Link>
                    </td>
                    <td>
                      <span className={`badge ${d.health === "failed" ? "late" : "fresh"}`}>
                        {d.health}
                      </span>
                    </td>
                    <td className="num">{d.failures}</td>
                    <td title={d.lastMessage}>{d.lastAt.toLocaleString("en-GB")}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div className="panel">
          <h2>Memory failures (7 days)</h2>
          {s.memory.length === 0 ? (
            <p className="muted">No memory failure reported.</p>
          ) : (
            <table data-testid="memory-table">
              <thead>
                <tr>
                  <th>When</th>
                  <th>Node / device</th>
                  <th>Range</th>
                  <th>What</th>
                  <th>Mirror regions</th>
                </tr>
              </thead>
              <tbody>
                {s.memory.map((e) => (
                  <tr key={e.id}>
                    <td>{e.occurredAt.toLocaleString("en-GB")}</td>
                    <td>
                      {e.nodeId} {e.device ? `/ ${e.device}` : ""}
                    </td>
                    <td>
                      {e.rangeStart !== null
                        ? `${e.rangeUnit} ${e.rangeStart}–${e.rangeEnd} (${e.count})`
                        : "—"}
                    </td>
                    <td>
                      {e.kind}
                      {e.simulated ? " (simulated)" : ""}: {e.message}
                    </td>
                    <td>
                      {e.mirror && e.regionStart !== null ? (
                        <Link
                          href={`/mirrors/${encodeURIComponent(e.mirror)}?first=${e.regionStart}&last=${e.regionEnd}`}
                        >
                          resync {e.mirror} regions {e.regionStart}–{e.regionEnd}
                        </Link>
                      ) : (
                        <span className="muted">not mapped to a mirror</span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
      </div>
    </>
  );
}
