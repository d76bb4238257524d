"use client";

import { useQuery } from "@tanstack/react-query";
import Link from "next/link";
import { DateTime } from "~/components/date-time";
import { FreshnessBadge } from "~/components/freshness-badge";
import { errorMessage } from "~/lib/errors";
import { formatDuration } from "~/lib/eta";
import { formatAge, formatTimeOfDay, formatUtc } from "~/lib/format";
import { formatExposure } from "~/lib/protection";
import { useFallbackInterval } from "~/stores/live";
import { useTRPC } from "~/trpc/react";
import { AlertDeliveryPanel, SilenceButton, silenceFor } from "./alert-delivery";

const healthText = {
  ok: "Healthy: every node reports on time, no mirror alarms and nothing failed in the last day.",
  attention: "needs attention, because:",
  critical: "redundancy is lost or something critical holds, worst first:",
  unknown: "part of the cluster's state is not known, because:",
} as const;

export function OverviewView() {
  const trpc = useTRPC();
  // Refetched on the live stream's node, mirror, event and audit changes (mirror percentages
  // patched in place); polled every 5 s only while it is down. While it is live, every 30 s
  // still: some alarms turn on the clock alone (30 min without redundancy, a slip sustained
  // for 2 min, the 24 h event window), with no change to announce them.
  const summary = useQuery({
    ...trpc.overview.summary.queryOptions(),
    refetchInterval: useFallbackInterval(5_000, 30_000),
  });
  const me = useQuery(trpc.session.me.queryOptions());
  const canOperate = me.data?.role === "operator" || me.data?.role === "admin";
  const alerts = useQuery(trpc.alerts.status.queryOptions());
  if (summary.isPending) return <p className="muted">Loading…</p>;
  if (summary.isError)
    return <p className="error">Cannot load the overview: {errorMessage(summary.error)}</p>;
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
        <p aria-live="polite">
          <strong>{s.health.toUpperCase()}</strong> — {healthText[s.health]}
        </p>
        {s.reasons.length > 0 && (
          <ul className="reasons" data-testid="health-reasons">
            {s.reasons.map((r) => (
              <li
                key={`${r.href}/${r.text}`}
                data-severity={r.severity}
                data-testid="health-reason"
              >
                <Link prefetch={false} href={r.href}>
                  {r.text}
                </Link>
              </li>
            ))}
          </ul>
        )}
      </div>
      <Alarms
        alarms={s.alarms}
        limitMs={s.alarmThresholds.withoutRedundancyMs}
        now={now}
        canOperate={canOperate}
        silences={alerts.data?.silences}
      />
      <AlertDeliveryPanel canOperate={canOperate} />
      {s.exposureError && (
        <p className="error">
          Cannot read since when mirrors are without redundancy: {s.exposureError}
        </p>
      )}
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
                    <Link prefetch={false} href={`/khugepaged?node=${encodeURIComponent(n.id)}`}>
                      {n.id}
                    </Link>
                  </td>
                  <td>
                    <FreshnessBadge value={n.freshness} />
                  </td>
                  <td className="muted" suppressHydrationWarning>
                    {formatAge(n.lastSeenAt, now)}
                  </td>
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
            Mirrors and resyncs{" "}
            <Link prefetch={false} href="/mirrors">
              all
            </Link>
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
                        <Link prefetch={false} href={`/mirrors/${encodeURIComponent(m.uuid)}`}>
                          {m.uuid}
                        </Link>
                      </td>
                      <td className="num">{m.percent.toFixed(1)} %</td>
                      <td>
                        <span
                          className={`badge ${m.trend === "in-sync" ? "fresh" : m.trend === "stalled" ? "late" : "unknown"}`}
                        >
                          {m.trend}
                        </span>
                        {m.onTrack && <span className="muted"> on track</span>}
                      </td>
                      <td className="muted" data-testid="without-redundancy">
                        {m.redundancyLost && (
                          <span className="error" data-testid="redundancy-lost">
                            without redundancy: {formatExposure(m.redundancyLost)}, nothing
                            recovering (resync {m.redundancyLost.reason}) ·{" "}
                            <Link
                              prefetch={false}
                              href={`/mirrors/${encodeURIComponent(m.uuid)}?resync=out-of-sync`}
                            >
                              resync only what is out of sync
                            </Link>{" "}
                            ·{" "}
                          </span>
                        )}
                        {m.outOfSyncSince && (
                          <span
                            title={`out of sync since ${formatUtc(m.outOfSyncSince)}${m.outOfSyncSinceBasis === "resync-start" ? " (the start of the running resync)" : " (first seen out of sync)"}`}
                          >
                            without redundancy{" "}
                            {m.outOfSyncSinceBasis === "first-observed" ? "≥ " : ""}
                            {/* Clock-dependent: the server's render is a moment older. */}
                            <span suppressHydrationWarning>
                              {formatDuration(
                                Math.max(0, now.getTime() - m.outOfSyncSince.getTime()) / 1000,
                              )}
                            </span>
                          </span>
                        )}
                        {m.projectedFinishAt && (
                          <span title={formatUtc(m.projectedFinishAt)}>
                            {" "}
                            · in sync ~
                            <span suppressHydrationWarning>
                              {formatTimeOfDay(m.projectedFinishAt)}
                            </span>
                          </span>
                        )}
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
        <div className="panel wide">
          <h2>Recent events</h2>
          {s.recentEvents.length === 0 ? (
            <p className="muted">No events recorded.</p>
          ) : (
            <table>
              <tbody>
                {s.recentEvents.map((e) => (
                  <tr key={e.id}>
                    <td className="muted">
                      <DateTime value={e.occurredAt} />
                    </td>
                    <td>{e.severity}</td>
                    <td>{e.kind}</td>
                    <td style={{ overflowWrap: "anywhere" }}>{e.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </div>
        <div className="panel wide">
          <h2>
            Recent operator actions{" "}
            <Link prefetch={false} href="/audit">
              all
            </Link>
          </h2>
          <table>
            <tbody>
              {s.recentAudit.map((a) => (
                <tr key={a.id}>
                  <td className="muted" suppressHydrationWarning>
                    {formatAge(a.at, now)}
                  </td>
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

const alarmLabel = {
  "without-redundancy": "without redundancy",
  stalled: "stalled",
  "eta-slipping": "ETA slipping",
} as const;

type TAlarmRow = {
  kind: keyof typeof alarmLabel;
  severity: "critical" | "warning";
  mirror: string;
  since: Date | null;
  message: string;
};

/** The mirrors' alarms, worst first; a recovering mirror on track has none. */
function Alarms({
  alarms,
  limitMs,
  now,
  canOperate,
  silences,
}: {
  alarms: TAlarmRow[];
  limitMs: number;
  now: Date;
  canOperate: boolean;
  silences: Parameters<typeof silenceFor>[0];
}) {
  return (
    <div className="panel" data-testid="alarms" data-count={alarms.length} aria-live="polite">
      <h2>
        Alarms <span className="muted">({alarms.length})</span>
      </h2>
      {alarms.length === 0 ? (
        <p className="muted">
          No alarms. Mirrors raise one when they stall, when their projected finish keeps moving
          later, or when they have been without redundancy for over {formatDuration(limitMs / 1000)}{" "}
          and are not recovering on track; a rebuild on track raises none.
        </p>
      ) : (
        <table>
          <tbody>
            {alarms.map((a) => (
              <tr
                key={`${a.mirror}/${a.kind}`}
                data-testid="alarm"
                data-kind={a.kind}
                data-severity={a.severity}
              >
                <td>
                  <span
                    className="badge late"
                    style={
                      a.severity === "critical"
                        ? { background: "rgba(248, 81, 73, 0.15)", color: "var(--bad)" }
                        : undefined
                    }
                  >
                    {a.severity}
                  </span>
                </td>
                <td>{alarmLabel[a.kind]}</td>
                <td>
                  <Link prefetch={false} href={`/mirrors/${encodeURIComponent(a.mirror)}`}>
                    {a.mirror}
                  </Link>
                </td>
                <td>{a.message}</td>
                <td className="muted" suppressHydrationWarning>
                  {a.since ? `since ${formatAge(a.since, now)}` : ""}
                </td>
                <td data-testid="alarm-silence">
                  {(() => {
                    const silenced = silenceFor(silences, a.kind, a.mirror);
                    return silenced ? (
                      <span className="muted">
                        silenced until <DateTime value={silenced.endsAt} /> by {silenced.createdBy}:{" "}
                        {silenced.reason}
                      </span>
                    ) : (
                      <SilenceButton kind={a.kind} mirror={a.mirror} canOperate={canOperate} />
                    );
                  })()}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
