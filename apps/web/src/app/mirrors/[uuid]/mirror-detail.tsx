"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useEffect, useRef, useState } from "react";
import { BlastRadius } from "~/components/blast-radius";
import { DateTime } from "~/components/date-time";
import { LegHealthChar, legHealthMeaning } from "~/components/leg-health";
import { RegionMap } from "~/components/region-map";
import { formatBytes, shortDevice } from "~/lib/bytes";
import { errorMessage } from "~/lib/errors";
import { formatDuration, formatEta, formatPercent } from "~/lib/eta";
import { formatDateTime } from "~/lib/format";
import {
  describeCancel,
  exposure,
  formatExposure,
  formatRate,
  resyncDisplayState,
  resyncEtaSeconds,
  resyncStateLabel,
} from "~/lib/protection";
import { useFallbackInterval } from "~/stores/live";
import { useTRPC } from "~/trpc/react";
import { ReplaceLeg } from "./replace-leg";

type TRange = { first?: number; last?: number; throttle?: number; outOfSyncOnly?: boolean };

export function MirrorDetail({
  uuid,
  initialRange = null,
  initialOutOfSyncOnly = false,
}: {
  uuid: string;
  initialRange?: { first: number; last: number } | null;
  /** Opened from "resync only what is out of sync" (the overview): that plan, planned. */
  initialOutOfSyncOnly?: boolean;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useQuery(trpc.session.me.queryOptions());
  const canOperate = me.data?.role === "operator" || me.data?.role === "admin";
  // Sync state, runs and new events arrive on the live stream (lib/live-apply.ts); these poll
  // only while it is down. The region map's marked (dirty) regions are not on the stream:
  // while it is live the map is refetched on each sync change and every 5 s for the marks.
  const detail = useQuery({
    ...trpc.mirrors.detail.queryOptions({ uuid }),
    refetchInterval: useFallbackInterval(1_000),
  });
  const map = useQuery({
    ...trpc.mirrors.regionMap.queryOptions({ uuid }),
    refetchInterval: useFallbackInterval(2_000, 5_000),
  });
  const history = useQuery({
    ...trpc.mirrors.history.queryOptions({ uuid }),
    refetchInterval: useFallbackInterval(5_000),
  });
  const [range, setRange] = useState<TRange | null>(
    initialOutOfSyncOnly ? { outOfSyncOnly: true } : null,
  );
  const [confirmCancel, setConfirmCancel] = useState(false);
  const [throttleValue, setThrottleValue] = useState("");
  const planRef = useRef<HTMLDivElement>(null);
  const statusRef = useRef<HTMLParagraphElement>(null);
  const plan = useQuery({
    ...trpc.mirrors.plan.queryOptions({ uuid, ...(range ?? {}) }),
    enabled: range !== null,
  });
  const [message, setMessage] = useState<string | null>(null);
  const refresh = () =>
    queryClient.invalidateQueries({ queryKey: trpc.mirrors.detail.queryKey({ uuid }) });
  // Focus stays with the result of an action: the status line says what happened.
  const say = (text: string) => {
    setMessage(text);
    requestAnimationFrame(() => statusRef.current?.focus());
  };
  const onError = (e: unknown) => say(errorMessage(e));
  const start = useMutation(
    trpc.mirrors.startResync.mutationOptions({
      onSuccess: (p) => {
        say(`Resync ${p.id} started: regions ${p.first}–${p.last}.`);
        setRange(null);
        void refresh();
      },
      onError,
    }),
  );
  const cancel = useMutation(
    trpc.mirrors.cancel.mutationOptions({
      onSuccess: (p) => {
        setConfirmCancel(false);
        say(
          `Resync ${p.id} cancelled: ${(p.total - p.inSync).toLocaleString("en-US")} regions of its range are still out of sync.`,
        );
        void refresh();
      },
      onError,
    }),
  );
  const throttle = useMutation(
    trpc.mirrors.throttle.mutationOptions({
      onSuccess: (p) => {
        say(
          p.throttle === null
            ? "Throttle removed: the resync runs as fast as it can."
            : `Throttle set: at most ${formatRate(p.throttle)}.`,
        );
        void refresh();
      },
      onError,
    }),
  );
  // A plan opened from elsewhere (or by a button) is brought into view.
  useEffect(() => {
    if (range !== null && plan.data) planRef.current?.scrollIntoView({ block: "nearest" });
  }, [range, plan.data]);

  if (detail.isPending) return <p className="muted">Loading…</p>;
  if (detail.isError) return <p className="error">{errorMessage(detail.error)}</p>;
  const d = detail.data;
  const p = d.progress;
  const active = p && (p.state === "running" || p.state === "paused");
  const disabledReason = !canOperate ? "needs the operator role" : null;
  const cancelPreview =
    p && active
      ? describeCancel({
          regionCount: d.regionCount,
          inSync: d.inSync,
          regionBytes: d.regionBytes,
          progress: p,
        })
      : null;
  const lost = d.redundancy.stopped;
  const outOfSyncNow = exposure(d.redundancy.outOfSync, d.regionBytes);
  const planOutOfSync = () => {
    setMessage(null);
    setRange({ outOfSyncOnly: true });
  };

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
          <progress
            max={d.regionCount}
            value={d.inSync}
            style={{ width: "100%" }}
            aria-label="regions in sync"
          />
          {lost ? (
            <div className="banner critical" role="alert" data-testid="redundancy-lost">
              <p>
                <strong>Without redundancy:</strong> {formatExposure(outOfSyncNow)} out of sync and
                nothing recovers them — resync <code>{lost.resyncId}</code> was {lost.reason}{" "}
                <span suppressHydrationWarning>{formatDateTime(new Date(lost.at))}</span>. A failure
                of the source leg now loses their data.
              </p>
              <button
                type="button"
                disabled={!!disabledReason}
                aria-describedby={disabledReason ? "operate-reason" : undefined}
                onClick={planOutOfSync}
              >
                Resync only what is out of sync…
              </button>
            </div>
          ) : d.redundancy.outOfSync > 0 ? (
            <p className="muted" data-testid="redundancy-exposure">
              {formatExposure(outOfSyncNow)} without redundancy
              {active ? " while the resync runs" : ""}.
            </p>
          ) : null}
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
                    <code>{p.id}</code>{" "}
                    <span data-testid="resync-state" data-display-state={resyncDisplayState(p)}>
                      ({resyncStateLabel(p)})
                    </span>
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
                  <td data-testid="resync-percent" aria-live="polite">
                    {formatPercent(p.percent, p.state === "done")}
                  </td>
                </tr>
                <tr>
                  <td>rate</td>
                  <td>{p.rate === null ? "measuring…" : `${p.rate.toFixed(1)} regions/s`}</td>
                </tr>
                <tr>
                  <td>time left</td>
                  <td data-testid="resync-eta">
                    {resyncDisplayState(p) === "throttled"
                      ? `${formatEta(resyncEtaSeconds(p), "running")} at ${formatRate(p.throttle!)}`
                      : formatEta(p.etaSeconds, p.state)}
                  </td>
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
                    <DateTime value={p.startedAt} />
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
                aria-describedby={disabledReason ? "operate-reason" : undefined}
                title={disabledReason ?? "stop this resync (asks first)"}
                aria-expanded={confirmCancel}
                onClick={() => setConfirmCancel(true)}
              >
                Cancel resync…
              </button>
              <form
                className="controls"
                onSubmit={(e) => {
                  e.preventDefault();
                  const n = Number(throttleValue);
                  if (!Number.isInteger(n) || n < 1) {
                    say("A throttle is a whole number of regions per second, at least 1.");
                    return;
                  }
                  throttle.mutate({ uuid, regionsPerSecond: n });
                }}
              >
                <label>
                  throttle (regions/s){" "}
                  <input
                    name="running-throttle"
                    type="number"
                    min={1}
                    step={1}
                    value={throttleValue}
                    placeholder={p.throttle === null ? "none" : String(p.throttle)}
                    onChange={(e) => setThrottleValue(e.target.value)}
                    disabled={!!disabledReason}
                    style={{ width: 90 }}
                  />
                </label>
                <button
                  type="submit"
                  disabled={!!disabledReason || throttle.isPending || throttleValue === ""}
                  aria-describedby={disabledReason ? "operate-reason" : undefined}
                >
                  Set throttle
                </button>
                <button
                  type="button"
                  disabled={!!disabledReason || throttle.isPending || p.throttle === null}
                  aria-describedby={disabledReason ? "operate-reason" : undefined}
                  title={disabledReason ?? "no limit"}
                  onClick={() => throttle.mutate({ uuid, regionsPerSecond: null })}
                >
                  Unthrottle
                </button>
              </form>
            </div>
          )}
          {active && confirmCancel && cancelPreview && (
            <div
              className="plan"
              data-testid="cancel-confirm"
              role="alertdialog"
              aria-label="cancel the resync?"
            >
              <p>
                <strong>Cancel resync {p.id}?</strong> {cancelPreview.sentence}
              </p>
              <div className="controls">
                <button
                  type="button"
                  // biome-ignore lint/a11y/noAutofocus: the confirmation takes the focus it asks for
                  autoFocus
                  disabled={cancel.isPending}
                  onClick={() => cancel.mutate({ uuid })}
                >
                  Confirm: cancel, leaving {formatExposure(cancelPreview.stays)} unprotected
                </button>
                <button type="button" onClick={() => setConfirmCancel(false)}>
                  Keep it running
                </button>
              </div>
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
                        {!leg.source && leg.health === "A" && d.regionCount > d.inSync && (
                          <div>
                            <button
                              type="button"
                              data-testid="leg-repair"
                              disabled={!!disabledReason || !!active}
                              aria-describedby={disabledReason ? "operate-reason" : undefined}
                              title={
                                disabledReason ??
                                (active
                                  ? "a resync is already running on this mirror"
                                  : "plan a resync of only the regions this leg is missing")
                              }
                              onClick={planOutOfSync}
                            >
                              Repair this leg…
                            </button>
                          </div>
                        )}
                        {!leg.source && leg.health !== "A" && (
                          <div className="muted" data-testid="leg-repair-note">
                            A resync cannot repair it: replace the device (or clear its errors) and
                            reload the table, then resync.
                          </div>
                        )}
                        {!leg.source && leg.health !== "A" && (
                          <ReplaceLeg
                            uuid={uuid}
                            nodeId={v.nodeId}
                            legIndex={i}
                            disabledReason={disabledReason}
                            onPlanResync={() => setRange({ first: 0, last: d.regionCount - 1 })}
                          />
                        )}
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
            regionCount={map.data.regionCount}
            {...(canOperate && !active
              ? {
                  onSelect: (r: { first: number; last: number }) => {
                    setMessage(null);
                    setRange(r);
                  },
                }
              : {})}
          />
        ) : (
          <p className="muted">
            {map.isError ? errorMessage(map.error) : "Loading the region map…"}
          </p>
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
                  <td>
                    <DateTime value={h.startedAt} />
                  </td>
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
        {disabledReason && (
          <p className="muted" id="operate-reason" data-testid="disabled-reason">
            Resync, cancel and throttle are disabled: they need the operator role (you are{" "}
            {me.data?.role ?? "signed out"}).
          </p>
        )}
        {plan.isError && <p className="error">{errorMessage(plan.error)}</p>}
        {range && plan.data && (
          <div className="plan" data-testid="resync-plan" ref={planRef}>
            {plan.data.outOfSyncOnly && (
              <p>
                <strong>Only what is out of sync:</strong> every region out of sync now lies in{" "}
                {plan.data.first}–{plan.data.last}.
              </p>
            )}
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
            <p data-testid="plan-unprotected" className={plan.data.wholeMirror ? "error" : ""}>
              <strong>Without redundancy while it runs:</strong>{" "}
              {plan.data.unprotectedDuring.exact ? "" : "up to "}
              {formatExposure(plan.data.unprotectedDuring)} — the mirror drops to{" "}
              {formatPercent(plan.data.unprotectedDuring.percentInSyncAtStart, false)} in sync at
              the start{" "}
              {plan.data.estimatedSeconds === null
                ? "for as long as the copy takes (no estimate yet)"
                : `for about ${formatDuration(plan.data.estimatedSeconds)}`}
              ; each region is protected again as soon as it is copied.
            </p>
            <button
              type="button"
              disabled={start.isPending || plan.data.runningResync !== null}
              onClick={() =>
                start.mutate({
                  uuid,
                  first: plan.data.first,
                  last: plan.data.last,
                  ...(range.throttle ? { throttle: range.throttle } : {}),
                })
              }
            >
              Confirm: resync {plan.data.regions.toLocaleString("en-US")} regions
            </button>{" "}
            <button type="button" onClick={() => setRange(null)}>
              Back
            </button>
          </div>
        )}
        <p role="status" className="muted" ref={statusRef} tabIndex={-1} aria-live="polite">
          {message}
        </p>
      </div>
    </>
  );
}
