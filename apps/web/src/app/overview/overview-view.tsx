"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { FreshnessBadge } from "~/components/freshness-badge";
import { formatAge } from "~/lib/format";
import { useTRPC } from "~/trpc/react";

const healthText = {
  ok: "Healthy: every node reports on time and nothing failed in the last day.",
  attention:
    "Needs attention: a node is late, errors were reported in the last day, or a mirror's recovery has stalled.",
  unknown:
    "Unknown: a node has missed three reports (or none has reported) — its state is not known.",
} as const;

export function OverviewView() {
  const trpc = useTRPC();
  const summary = useQuery({ ...trpc.overview.summary.queryOptions(), refetchInterval: 5_000 });
  if (summary.isPending) return <p className="muted">Loading…</p>;
  if (summary.isError)
    return <p className="error">Cannot load the overview: {summary.error.message}</p>;
  const s = summary.data;
  const now = new Date();
  return (
    <>
      <div
        className={`panel health-${s.health}`}
        data-testid="cluster-health"
        data-health={s.health}
      >
        <h2>Cluster health</h2>
        <p>
          <strong>{s.health.toUpperCase()}</strong> — {healthText[s.health]}
        </p>
      </div>
      <div className="grid">
        <div className="panel">
          <h2>
            Nodes{" "}
            <span className="muted">
              ({s.nodeCounts.fresh} fresh, {s.nodeCounts.late} late, {s.nodeCounts.unknown} unknown)
            </span>
          </h2>
          <table>
            <tbody>
              {s.nodes.map((n) => (
                <tr key={n.id}>
                  <td>
                    <Link href={`/khugepaged?node=${encodeURIComponent(n.id)}`}>{n.id}</Link>
                  </td>
                  <td>
                    <FreshnessBadge value={n.freshness} />
                  </td>
                  <td className="muted">{formatAge(n.lastSeenAt, now)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {s.nodes.length === 0 && <p className="muted">No agent has reported yet.</p>}
        </div>
        <div className="panel">
          <h2>Events, last 24 h</h2>
          <table>
            <tbody>
              {Object.entries(s.eventsLast24h).map(([severity, count]) => (
                <tr key={severity}>
                  <td>{severity}</td>
                  <td className="num">{count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="panel" data-testid="overview-mirrors">
          <h2>
            Mirrors and resyncs <Link href="/mirrors">all</Link>
          </h2>
          {s.mirrors.total === 0 ? (
            <p className="muted">
              No mirror has reported yet: mirrors appear here when an agent serves a cluster log
              (the kernel bridge or the mirror simulator).
            </p>
          ) : (
            <>
              <p>
                {s.mirrors.inSync} of {s.mirrors.total} in sync, {s.mirrors.recovering} recovering,{" "}
                <span className={s.mirrors.stalled.length ? "error" : ""}>
                  {s.mirrors.stalled.length} stalled
                </span>
                ; {s.mirrors.resyncsRunning} operator resync(s) running.
              </p>
              <table>
                <tbody>
                  {s.mirrors.list.map((m) => (
                    <tr key={m.uuid}>
                      <td>
                        <Link href={`/mirrors/${encodeURIComponent(m.uuid)}`}>{m.uuid}</Link>
                      </td>
                      <td className="num">{m.percent.toFixed(1)} %</td>
                      <td>
                        <span
                          className={`badge ${m.trend === "in-sync" ? "fresh" : m.trend === "stalled" ? "late" : "unknown"}`}
                        >
                          {m.trend}
                        </span>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </div>
      </div>
      <div className="grid">
        <div className="panel">
          <h2>Recent events</h2>
          {s.recentEvents.length === 0 ? (
            <p className="muted">No events recorded.</p>
          ) : (
            <table>
              <tbody>
                {s.recentEvents.map((e) => (
                  <tr key={e.id}>
                    <td className="muted">{e.occurredAt.toLocaleString("en-GB")}</td>
                    <td>{e.severity}</td>
                    <td>{e.kind}</td>
                    <td>{e.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div className="panel">
          <h2>
            Recent operator actions <Link href="/audit">all</Link>
          </h2>
          <table>
            <tbody>
              {s.recentAudit.map((a) => (
                <tr key={a.id}>
                  <td className="muted">{formatAge(a.at, now)}</td>
                  <td>{a.actor}</td>
                  <td>
                    <code>{a.action}</code>
                  </td>
                  <td>{a.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </div>
    </>
  );
}
