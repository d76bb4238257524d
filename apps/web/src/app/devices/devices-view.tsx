"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { BlastRadius } from "~/components/blast-radius";
import { DateTime } from "~/components/date-time";
import { LegHealthChar } from "~/components/leg-health";
import { shortDevice } from "~/lib/bytes";
import { errorMessage } from "~/lib/errors";
import { formatRange } from "~/lib/format";
import { useFallbackInterval } from "~/stores/live";
import { useTRPC } from "~/trpc/react";
import { DisksPanel } from "./disks-table";

export function DevicesView() {
  const trpc = useTRPC();
  const summary = useQuery({
    ...trpc.devices.summary.queryOptions({ days: 7 }),
    // The live stream refetches it on new events and leg changes; polling only while it is down.
    refetchInterval: useFallbackInterval(5_000),
  });
  const legs = useQuery({
    ...trpc.devices.mirrorLegs.queryOptions(),
    refetchInterval: useFallbackInterval(5_000),
  });
  const legDevice = (nodeId: string | null, device: string) =>
    legs.data?.devices.find((d) => d.nodeId === nodeId && d.device === device) ?? null;
  if (summary.isPending) return <p className="muted">Loading…</p>;
  if (summary.isError) return <p className="error">{errorMessage(summary.error)}</p>;
  const s = summary.data;
  return (
    <>
      <DisksPanel />
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
      <div className="panel" data-testid="blast-radius">
        <h2>Mirror legs: blast radius</h2>
        {legs.isError ? (
          <p className="error">{errorMessage(legs.error)}</p>
        ) : !legs.data ? (
          <p className="muted">Asking the agents…</p>
        ) : (
          <>
            {legs.data.devices.length === 0 ? (
              <p className="muted">No agent reports a mirror leg.</p>
            ) : (
              <table data-testid="leg-devices">
                <thead>
                  <tr>
                    <th>Node</th>
                    <th>Device</th>
                    <th>Legs on it</th>
                    <th>If it fails now</th>
                  </tr>
                </thead>
                <tbody>
                  {legs.data.devices.map((d) => (
                    <tr
                      key={`${d.nodeId}/${d.device}`}
                      data-testid="leg-device-row"
                      data-at-risk={d.blastRadius.length}
                    >
                      <td>{d.nodeId}</td>
                      <td title={d.device}>{shortDevice(d.device)}</td>
                      <td>
                        {d.legs.map((l) => (
                          <div key={`${l.uuid}/${l.leg}`}>
                            <LegHealthChar health={l.health} /> {l.name ?? l.uuid} leg {l.leg}
                            {l.source ? <span className="muted"> (source)</span> : null}
                          </div>
                        ))}
                      </td>
                      <td>
                        <BlastRadius entries={d.blastRadius} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
            {legs.data.unknown.length > 0 && (
              <p className="muted">
                Legs not reported (their devices are not listed):{" "}
                {legs.data.unknown.map((u) => `${u.uuid} on ${u.nodeId} (${u.reason})`).join("; ")}
              </p>
            )}
            {legs.data.unreachable.length > 0 && (
              <p className="error">
                Not reachable: {legs.data.unreachable.map((u) => u.nodeId).join(", ")}
              </p>
            )}
            <p className="muted">{legs.data.caveat}</p>
            <h2 style={{ marginTop: 16 }}>If a node fails now</h2>
            <table data-testid="node-blast-radius">
              <tbody>
                {legs.data.nodes.map((n) => (
                  <tr key={n.nodeId}>
                    <td>{n.nodeId}</td>
                    <td>
                      {n.blastRadius.length === 0 ? (
                        <span className="muted">nothing only this node provides</span>
                      ) : (
                        <ul style={{ margin: 0, paddingLeft: 16 }}>
                          {n.blastRadius.map((b) => (
                            <li key={b.uuid}>
                              <Link
                                prefetch={false}
                                href={`/mirrors/${encodeURIComponent(b.uuid)}`}
                              >
                                {b.name ?? b.uuid}
                              </Link>
                              : {b.detail}
                            </li>
                          ))}
                        </ul>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p className="muted">{legs.data.nodeCaveat}</p>
          </>
        )}
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
                  <th>If it fails now</th>
                </tr>
              </thead>
              <tbody>
                {s.devices.map((d) => (
                  <tr key={`${d.nodeId}/${d.device}`}>
                    <td>{d.nodeId}</td>
                    <td>
                      <Link
                        prefetch={false}
                        href={`/events?device=${encodeURIComponent(d.device)}`}
                      >
                        {d.device}
                      </Link>
                    </td>
                    <td>
                      <span className={`badge ${d.health === "failed" ? "late" : "fresh"}`}>
                        {d.health}
                      </span>
                    </td>
                    <td className="num">{d.failures}</td>
                    <td title={d.lastMessage}>
                      <DateTime value={d.lastAt} />
                    </td>
                    <td>
                      {legDevice(d.nodeId, d.device) ? (
                        <BlastRadius entries={legDevice(d.nodeId, d.device)!.blastRadius} />
                      ) : (
                        <span className="muted">
                          {legs.data ? "backs no mirror leg the agents report" : "…"}
                        </span>
                      )}
                    </td>
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
                    <td>
                      <DateTime value={e.occurredAt} />
                    </td>
                    <td>
                      {e.nodeId} {e.device ? `/ ${e.device}` : ""}
                    </td>
                    <td>
                      {e.rangeStart !== null
                        ? `${formatRange(e.rangeUnit, e.rangeStart, e.rangeEnd)} (${e.count})`
                        : "—"}
                    </td>
                    <td>
                      {e.kind}
                      {e.simulated ? " (simulated)" : ""}: {e.message}
                    </td>
                    <td>
                      {e.mirror && e.regionStart !== null ? (
                        <Link
                          prefetch={false}
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
