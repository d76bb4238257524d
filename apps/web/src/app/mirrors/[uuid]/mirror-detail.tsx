"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { BlastRadius } from "~/components/blast-radius";
import { LegHealthChar, legHealthMeaning } from "~/components/leg-health";
import { RegionMap } from "~/components/region-map";
import { formatBytes, shortDevice } from "~/lib/bytes";
import { formatDuration, formatEta, formatPercent } from "~/lib/eta";
import { useTRPC } from "~/trpc/react";

export function MirrorDetail({
  uuid,
  initialRange = null,
}: {
  uuid: string;
  initialRange?: { first: number; last: number } | null;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useQuery(trpc.session.me.queryOptions());
  const canOperate = me.data?.role === "operator" || me.data?.role === "admin";
  const detail = useQuery({
    ...trpc.mirrors.detail.queryOptions({ uuid }),
    refetchInterval: 1_000,
  });
  const map = useQuery({
    ...trpc.mirrors.regionMap.queryOptions({ uuid }),
    refetchInterval: 2_000,
  });
  const history = useQuery({
    ...trpc.mirrors.history.queryOptions({ uuid }),
    refetchInterval: 5_000,
  });
  const [range, setRange] = useState<{ first?: number; last?: number; throttle?: number } | null>(
    null,
  );
  const plan = useQuery({
    ...trpc.mirrors.plan.queryOptions({ uuid, ...(range ?? {}) }),
    enabled: range !== null,
  });
  const [message, setMessage] = useState<string | null>(null);
  const refresh = () =>
    queryClient.invalidateQueries({ queryKey: trpc.mirrors.detail.queryKey({ uuid }) });
  const onError = (e: { message: string }) => setMessage(e.message);
  const start = useMutation(
    trpc.mirrors.startResync.mutationOptions({
      onSuccess: (p) => {
        setMessage(`resync ${p.id} started`);
        setRange(null);
        void refresh();
      },
      onError,
    }),
  );
  const cancel = useMutation(
    trpc.mirrors.cancel.mutationOptions({
      onSuccess: () => {
        setMessage("resync cancelled");
        void refresh();
      },
      onError,
    }),
  );
  const throttle = useMutation(
    trpc.mirrors.throttle.mutationOptions({
      onSuccess: () => {
        setMessage("throttle changed");
        void refresh();
      },
      onError,
    }),
  );

  if (detail.isPending) return <p className="muted">Loading…</p>;
  if (detail.isError) return <p className="error">{detail.error.message}</p>;
  const d = detail.data;
  const p = d.progress;
  const active = p && (p.state === "running" || p.state === "paused");
  const disabledReason = !canOperate ? "needs the operator role" : null;

  function onPlan(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const num = (k: string) =>
      String(f.get(k) ?? "").trim() === "" ? undefined : Number(f.get(k));
    setMessage(null);
    setRange({
      ...(num("first") !== undefined ? { first: num("first") } : {}),
      ...(num("last") !== undefined ? { last: num("last") } : {}),
      ...(num("throttle") !== undefined ? { throttle: num("throttle") } : {}),
    });
  }

  return (
    <>
      <h1>
        Mirror <code>{uuid}</code>
      </h1>
      <div className="grid">
        <div className="panel" data-testid="mirror-sync">
          <h2>Sync</h2>
          <p>
            <strong data-testid="mirror-percent">
              {formatPercent(
                (100 * d.inSync) / Math.max(1, d.regionCount),
                d.inSync === d.regionCount,
              )}
            </strong>{" "}
            in sync — {d.inSync.toLocaleString("en-US")} of {d.regionCount.toLocaleString("en-US")}{" "}
            regions; held by {d.nodes.join(", ")}
          </p>
          <progress max={d.regionCount} value={d.inSync} style={{ width: "100%" }} />
          <p className="muted" data-testid="mirror-facts">
            {d.name ? `${d.name}: ` : ""}
            {formatBytes(d.sizeBytes)} in regions of {formatBytes(d.regionBytes)}; log{" "}
            {d.logType ?? "type not reported"}
            {d.logDevice ? (
              <>
                {" "}
                on {shortDevice(d.logDevice.device)}{" "}
                {d.logDevice.health ? (
                  <LegHealthChar health={d.logDevice.health} />
                ) : (
                  "(health unknown)"
                )}
              </>
            ) : null}
          </p>
        </div>
        <div className="panel" data-testid="resync-progress" data-state={p?.state ?? "none"}>
          <h2>Resync</h2>
          {!p ? (
            <p className="muted">No resync has run on this mirror since the agent started.</p>
          ) : (
            <table>
              <tbody>
                <tr>
                  <td>run</td>
                  <td>
                    <code>{p.id}</code> ({p.state})
                  </td>
                </tr>
                <tr>
                  <td>range</td>
                  <td>
                    regions {p.first}–{p.last} ({p.total.toLocaleString("en-US")})
                  </td>
                </tr>
                <tr>
                  <td>progress</td>
                  <td data-testid="resync-percent">
                    {formatPercent(p.percent, p.state === "done")}
                  </td>
                </tr>
                <tr>
                  <td>rate</td>
                  <td>{p.rate === null ? "measuring…" : `${p.rate.toFixed(1)} regions/s`}</td>
                </tr>
                <tr>
                  <td>time left</td>
                  <td data-testid="resync-eta">{formatEta(p.etaSeconds, p.state)}</td>
                </tr>
                <tr>
                  <td>recovering</td>
                  <td>
                    {p.recoveringNode === null
                      ? "—"
                      : `node ${p.recoveringNode}, region ${p.recoveringRegion}`}
                  </td>
                </tr>
                <tr>
                  <td>throttle</td>
                  <td>{p.throttle === null ? "none" : `${p.throttle} regions/s`}</td>
                </tr>
                <tr>
                  <td>started</td>
                  <td>
                    {new Date(p.startedAt).toLocaleString("en-GB")}
                    {p.endedAt
                      ? `, ended after ${formatDuration((p.endedAt - p.startedAt) / 1000)}`
                      : ""}
                  </td>
                </tr>
              </tbody>
            </table>
          )}
          {active && (
            <div className="controls">
              <button
                type="button"
                disabled={!!disabledReason || cancel.isPending}
                title={disabledReason ?? "stop this resync"}
                onClick={() => cancel.mutate({ uuid })}
              >
                Cancel resync
              </button>
              {[100, 1000].map((r) => (
                <button
                  key={r}
                  type="button"
                  disabled={!!disabledReason || throttle.isPending}
                  title={disabledReason ?? `at most ${r} regions/s`}
                  onClick={() => throttle.mutate({ uuid, regionsPerSecond: r })}
                >
                  Throttle {r}/s
                </button>
              ))}
              <button
                type="button"
                disabled={!!disabledReason || throttle.isPending}
                title={disabledReason ?? "no limit"}
                onClick={() => throttle.mutate({ uuid, regionsPerSecond: null })}
              >
                Unthrottle
              </button>
            </div>
          )}
        </div>
      </div>

      <div className="panel" data-testid="mirror-legs">
        <h2>Legs</h2>
        {d.views.map((v) => (
          <div key={v.nodeId}>
            {d.views.length > 1 && (
              <h3 style={{ fontSize: 13 }}>As {v.nodeId}'s kernel sees them</h3>
            )}
            {!v.legs ? (
              <p className="muted">
                {v.nodeId} does not report this mirror's legs: {v.reason}
              </p>
            ) : (
              <table>
                <thead>
                  <tr>
                    <th>Leg</th>
                    <th>Device</th>
                    <th>Health</th>
                    <th>Role</th>
                    <th>In sync</th>
                    <th>If it fails now</th>
                  </tr>
                </thead>
                <tbody>
                  {v.legs.map((leg, i) => (
                    <tr
                      // biome-ignore lint/suspicious/noArrayIndexKey: a leg is its position in the table
                      key={i}
                      data-testid="leg-row"
                      data-health={leg.health}
                      data-source={leg.source ? "true" : "false"}
                    >
                      <td className="num">{i}</td>
                      <td title={leg.device}>
                        <span style={{ whiteSpace: "nowrap" }}>{shortDevice(leg.device)}</span>
                        {leg.label && <div className="muted">{leg.label}</div>}
                        {leg.majorMinor && <div className="muted">{leg.majorMinor}</div>}
                        {leg.underlying.length > 0 && (
                          <div className="muted">on {leg.underlying.join(", ")}</div>
                        )}
                      </td>
                      <td>
                        <LegHealthChar health={leg.health} />{" "}
                        <span className="muted">{legHealthMeaning[leg.health] ?? ""}</span>
                      </td>
                      <td data-testid="leg-role">
                        {leg.source
                          ? "resync source: recovery copies from it, reads go to it"
                          : leg.health === "A"
                            ? "copy target"
                            : "not written by recovery (errors)"}
                        {leg.primary && !leg.source ? " (the table's primary, failed over)" : ""}
                        {leg.primary && leg.source ? " (primary)" : ""}
                      </td>
                      <td data-testid="leg-sync">
                        {leg.source
                          ? "holds every region's current data"
                          : leg.health === "A"
                            ? `${formatPercent(
                                (100 * d.inSync) / Math.max(1, d.regionCount),
                                d.inSync === d.regionCount,
                              )} (${(d.regionCount - d.inSync).toLocaleString("en-US")} regions stale)`
                            : "not in sync: it has errors"}
                      </td>
                      <td data-testid="leg-blast-radius">
                        <BlastRadius entries={leg.blastRadius} linked={false} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        ))}
        <p className="muted" style={{ marginTop: 8 }}>
          {d.blastRadiusCaveat}
        </p>
      </div>

      <div className="panel">
        <h2>Regions</h2>
        {map.data ? (
          <RegionMap
            states={Uint8Array.from(atob(map.data.buckets), (c) => c.charCodeAt(0))}
            regionsPerBucket={map.data.regionsPerBucket}
          />
        ) : (
          <p className="muted">{map.isError ? map.error.message : "Loading the region map…"}</p>
        )}
      </div>

      <div className="panel" data-testid="resync-history">
        <h2>Resync history</h2>
        {history.data?.length ? (
          <table>
            <thead>
              <tr>
                <th>Run</th>
                <th>Started</th>
                <th>Duration</th>
                <th>Regions</th>
                <th>Kind</th>
                <th>Outcome</th>
              </tr>
            </thead>
            <tbody>
              {history.data.map((h) => (
                <tr key={h.id}>
                  <td>
                    <code>{h.id}</code>
                  </td>
                  <td>{h.startedAt.toLocaleString("en-GB")}</td>
                  <td>
                    {h.endedAt
                      ? formatDuration((h.endedAt.getTime() - h.startedAt.getTime()) / 1000)
                      : "—"}
                  </td>
                  <td>{h.first === null ? "—" : `${h.first}–${h.last}`}</td>
                  <td>{h.first === 0 && h.last === d.regionCount - 1 ? "full" : "partial"}</td>
                  <td>{h.outcome}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p className="muted">No resync of this mirror is recorded.</p>
        )}
      </div>

      <div className="panel">
        <h2>Start a resync</h2>
        <form onSubmit={onPlan} className="controls">
          <label>
            first region{" "}
            <input
              name="first"
              type="number"
              min={0}
              max={d.regionCount - 1}
              placeholder="0"
              defaultValue={initialRange?.first}
            />
          </label>
          <label>
            last region{" "}
            <input
              name="last"
              type="number"
              min={0}
              max={d.regionCount - 1}
              placeholder={String(d.regionCount - 1)}
            />
          </label>
          <label>
            throttle (regions/s) <input name="throttle" type="number" min={1} placeholder="none" />
          </label>
          <button
            type="submit"
            disabled={!!disabledReason || !!active}
            title={
              disabledReason ??
              (active ? "a resync is already running on this mirror" : "show the plan first")
            }
          >
            Plan resync…
          </button>
        </form>
        {plan.isError && <p className="error">{plan.error.message}</p>}
        {range && plan.data && (
          <div className="plan" data-testid="resync-plan">
            <p>
              <strong>This will</strong> mark regions {plan.data.first}–{plan.data.last} (
              {plan.data.regions.toLocaleString("en-US")} regions
              {plan.data.bytes !== null ? (
                <span data-testid="plan-bytes">, {formatBytes(plan.data.bytes)}</span>
              ) : (
                ", size unknown: the agent does not report the region size"
              )}
              {plan.data.wholeMirror ? ", the whole mirror" : ""}) out of sync through the cluster's
              ordered log, then copy them{" "}
              {plan.data.source ? (
                <span data-testid="plan-source">
                  from leg {plan.data.source.index} ({shortDevice(plan.data.source.device)},{" "}
                  <LegHealthChar health={plan.data.source.health} />, as {plan.data.source.nodeId}{" "}
                  sees it)
                </span>
              ) : (
                "from the source leg"
              )}
              {plan.data.targets && plan.data.targets.length > 0 && (
                <>
                  {" "}
                  to{" "}
                  {plan.data.targets.map((t, i) => (
                    <span key={t.index}>
                      {i > 0 ? ", " : ""}leg {t.index} ({shortDevice(t.device)},{" "}
                      <LegHealthChar health={t.health} />)
                    </span>
                  ))}
                </>
              )}
              . Writes continue meanwhile.{" "}
              {plan.data.estimatedSeconds === null
                ? "No duration estimate yet (no throttle and no measured rate)."
                : `Estimated ${formatDuration(plan.data.estimatedSeconds)} at the ${plan.data.rateBasis}.`}{" "}
              Currently out of sync: {plan.data.currentlyOutOfSync.toLocaleString("en-US")} regions.
              Source nodes:{" "}
              {plan.data.sourceHealth.map((s) => `${s.nodeId} (${s.freshness})`).join(", ")}.
              {plan.data.targets?.some((t) => t.health !== "A") && (
                <span className="error">
                  {" "}
                  A leg with errors does not take the copy: its regions stay out of sync until it is
                  repaired.
                </span>
              )}
              {plan.data.source === null && plan.data.legsUnknownReason && (
                <span className="muted"> Legs unknown: {plan.data.legsUnknownReason}.</span>
              )}
            </p>
            <button
              type="button"
              disabled={start.isPending || plan.data.runningResync !== null}
              onClick={() => start.mutate({ uuid, ...range })}
            >
              Confirm: resync {plan.data.regions.toLocaleString("en-US")} regions
            </button>{" "}
            <button type="button" onClick={() => setRange(null)}>
              Back
            </button>
          </div>
        )}
        {message && (
          <p role="status" className="muted">
            {message}
          </p>
        )}
      </div>
    </>
  );
}
