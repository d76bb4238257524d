"use client";

import { useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useState } from "react";
import { useShallow } from "zustand/react/shallow";
import { SeriesChart } from "~/components/series-chart";
import { TimelineChart } from "~/components/timeline-chart";
import { errorMessage } from "~/lib/errors";
import { formatNumber } from "~/lib/format";
import { chartedSeries } from "~/lib/khugepaged-charts";
import { useFallbackInterval } from "~/stores/live";
import { useViewStore } from "~/stores/view";
import { useTRPC } from "~/trpc/react";
import { kernelChoices, PerSizeEditor, TunableEditor } from "./tunable-editor";

const tunableHelp: Record<string, string> = {
  pages_to_scan: "pages scanned per pass (≥ 1)",
  scan_sleep_millisecs: "sleep between passes, ms",
  alloc_sleep_millisecs: "wait after a failed THP allocation, ms",
  defrag: "khugepaged may compact memory (0/1)",
  max_ptes_none: "empty PTEs allowed in a collapse",
  max_ptes_swap: "swapped PTEs allowed in a collapse",
  max_ptes_shared: "shared PTEs allowed in a collapse",
};

const windows = [
  { label: "5 min", ms: 5 * 60_000 },
  { label: "15 min", ms: 15 * 60_000 },
  { label: "1 h", ms: 3600_000 },
  { label: "24 h", ms: 86_400_000 },
];

export function KhugepagedView({ initialNodeId }: { initialNodeId: string | null }) {
  const trpc = useTRPC();
  const { selectedNodeId, selectNode, windowMs, setWindow, live, setLive } = useViewStore(
    useShallow((s) => ({
      selectedNodeId: s.selectedNodeId,
      selectNode: s.selectNode,
      windowMs: s.windowMs,
      setWindow: s.setWindow,
      live: s.live,
      setLive: s.setLive,
    })),
  );
  const nodes = useQuery(trpc.khugepaged.nodes.queryOptions());
  const me = useQuery(trpc.session.me.queryOptions());
  const canEdit = me.data?.role === "operator" || me.data?.role === "admin";
  // Opens on a node that has khugepaged (a simulated cluster node has none).
  const nodeId =
    selectedNodeId ??
    initialNodeId ??
    nodes.data?.find((n) => n.hasKhugepaged)?.id ??
    nodes.data?.[0]?.id ??
    null;
  useEffect(() => {
    if (!selectedNodeId && nodeId) selectNode(nodeId);
  }, [selectedNodeId, nodeId, selectNode]);

  // Each report of the node (its samples stored) arrives on the live stream and refetches
  // these (lib/live-apply.ts); they poll only while it is down, and not at all when paused.
  const fallback = useFallbackInterval(5_000);
  const refetchInterval = live ? fallback : false;
  const current = useQuery({
    ...trpc.khugepaged.current.queryOptions({ nodeId: nodeId ?? "" }),
    enabled: nodeId !== null,
    refetchInterval,
  });
  const series = useQuery({
    ...trpc.khugepaged.series.queryOptions({
      nodeId: nodeId ?? "",
      series: chartedSeries,
      windowMs,
    }),
    enabled: nodeId !== null,
    refetchInterval,
  });

  // About one point per pixel of the timeline (in 20 px steps, so a resize by a few pixels
  // does not refetch); the server never goes below one-second buckets.
  const [timelineWidth, setTimelineWidth] = useState(600);
  const onTimelineWidth = useCallback(
    (px: number) => setTimelineWidth(Math.min(2_000, Math.max(20, Math.round(px / 20) * 20))),
    [],
  );
  const [resyncScope, setResyncScope] = useState<"cluster" | "node">("cluster");
  const timeline = useQuery({
    ...trpc.khugepaged.timeline.queryOptions({
      nodeId: nodeId ?? "",
      windowMs,
      buckets: timelineWidth,
      resyncScope,
    }),
    enabled: nodeId !== null,
    refetchInterval,
    placeholderData: (previous) => previous,
  });

  if (nodes.isPending) return <p className="muted">Loading…</p>;
  if (nodes.data?.length === 0) return <p className="muted">No agent has reported yet.</p>;

  return (
    <>
      <div className="controls">
        <label>
          Node{" "}
          <select
            value={nodeId ?? ""}
            onChange={(e) => selectNode(e.target.value)}
            data-testid="node-select"
            style={{ maxWidth: "calc(100vw - 90px)" }}
          >
            {nodes.data?.map((n) => (
              <option key={n.id} value={n.id}>
                {n.id} ({n.hostname}){n.hasKhugepaged ? "" : ", no khugepaged"}
              </option>
            ))}
          </select>
        </label>
        <span>
          {windows.map((w) => (
            <button
              key={w.ms}
              type="button"
              aria-pressed={windowMs === w.ms}
              onClick={() => setWindow(w.ms)}
            >
              {w.label}
            </button>
          ))}
        </span>
        <button type="button" aria-pressed={live} onClick={() => setLive(!live)}>
          {live ? "Live" : "Paused"}
        </button>
      </div>

      {current.isError && (
        <p className="error">Cannot read current values: {errorMessage(current.error)}</p>
      )}
      {current.data && (
        <div className="grid">
          <div className="panel wide">
            <h2>
              Tunables{" "}
              <span className="muted" data-testid="current-source">
                {current.data.source === "agent" ? "read live from sysfs" : "last stored values"}
              </span>
            </h2>
            {current.data.error && <p className="error">{current.data.error}</p>}
            <table>
              <tbody>
                {Object.entries(current.data.tunables).map(([name, value]) => (
                  <tr key={name}>
                    <td>
                      <code>khugepaged/{name}</code>
                      <div className="muted">{tunableHelp[name]}</div>
                    </td>
                    <td className="num" data-testid={`tunable-${name}`}>
                      {formatNumber(value)}
                    </td>
                    <td>
                      {nodeId && current.data?.source === "agent" && (
                        <TunableEditor
                          nodeId={nodeId}
                          name={`khugepaged/${name}`}
                          current={String(value ?? "")}
                          canEdit={canEdit}
                        />
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="panel">
            <h2>THP and counters</h2>
            <table>
              <tbody>
                <tr>
                  <td>
                    <code>enabled</code>
                  </td>
                  <td className="num" data-testid="thp-enabled">
                    {current.data.thp.enabled ?? "—"}
                  </td>
                  <td>
                    {nodeId && current.data.source === "agent" && current.data.thp.enabled && (
                      <TunableEditor
                        nodeId={nodeId}
                        name="enabled"
                        current={kernelChoices(current.data.thp.enabled).selected ?? ""}
                        choices={kernelChoices(current.data.thp.enabled).choices}
                        canEdit={canEdit}
                      />
                    )}
                  </td>
                </tr>
                <tr>
                  <td>
                    <code>defrag</code>
                  </td>
                  <td className="num" data-testid="thp-defrag">
                    {current.data.thp.defrag ?? "—"}
                  </td>
                  <td>
                    {nodeId && current.data.source === "agent" && current.data.thp.defrag && (
                      <TunableEditor
                        nodeId={nodeId}
                        name="defrag"
                        current={kernelChoices(current.data.thp.defrag).selected ?? ""}
                        choices={kernelChoices(current.data.thp.defrag).choices}
                        canEdit={canEdit}
                      />
                    )}
                  </td>
                </tr>
                <tr>
                  <td>
                    <code>shmem_enabled</code>
                  </td>
                  <td className="num">{current.data.thp.shmemEnabled ?? "—"}</td>
                  <td>
                    {nodeId && current.data.source === "agent" && current.data.thp.shmemEnabled && (
                      <TunableEditor
                        nodeId={nodeId}
                        name="shmem_enabled"
                        current={kernelChoices(current.data.thp.shmemEnabled).selected ?? ""}
                        choices={kernelChoices(current.data.thp.shmemEnabled).choices}
                        canEdit={canEdit}
                      />
                    )}
                  </td>
                </tr>
                <tr>
                  <td>
                    <code>hpage_pmd_size</code>
                  </td>
                  <td className="num">{formatNumber(current.data.thp.hpagePmdSize)}</td>
                </tr>
                <tr>
                  <td>
                    <code>khugepaged/pages_collapsed</code>
                  </td>
                  <td className="num" data-testid="counter-pages_collapsed">
                    {formatNumber(current.data.counters.pagesCollapsed)}
                  </td>
                </tr>
                <tr>
                  <td>
                    <code>khugepaged/full_scans</code>
                  </td>
                  <td className="num" data-testid="counter-full_scans">
                    {formatNumber(current.data.counters.fullScans)}
                  </td>
                </tr>
              </tbody>
            </table>
            {nodeId && current.data.source === "agent" && (
              <>
                <h3 style={{ fontSize: 13, marginTop: 12 }}>Per page size</h3>
                <p className="muted">
                  <code>hugepages-&lt;size&gt;kB/enabled</code> (and <code>shmem_enabled</code>):
                  this agent does not report their current values; a write is checked by the
                  kernel's rules and recorded.
                </p>
                <PerSizeEditor nodeId={nodeId} canEdit={canEdit} />
              </>
            )}
          </div>
        </div>
      )}

      {timeline.data && (
        <TimelineChart
          points={timeline.data.points}
          bucketMs={timeline.data.bucketMs}
          resyncScope={resyncScope}
          onResyncScope={setResyncScope}
          onWidth={onTimelineWidth}
        />
      )}
      <h2 style={{ marginTop: 8 }}>History</h2>
      {series.isError && <p className="error">Cannot load history: {errorMessage(series.error)}</p>}
      <div className="grid">
        {chartedSeries.map((name, i) => (
          <SeriesChart
            key={name}
            title={name}
            points={series.data?.series[name] ?? []}
            color={
              [
                "#4fa3ff",
                "#3fb950",
                "#d29922",
                "#f85149",
                "#a371f7",
                "#39c5cf",
                "#ff7b72",
                "#e3b341",
              ][i]
            }
          />
        ))}
      </div>

      {current.data && (
        <div className="panel">
          <h2>/proc/vmstat THP and collapse counters</h2>
          <table data-testid="vmstat-table">
            <tbody>
              {Object.entries(current.data.vmstat)
                .sort(([a], [b]) => a.localeCompare(b))
                .map(([name, value]) => (
                  <tr key={name}>
                    <td>
                      <code>{name}</code>
                    </td>
                    <td className="num" data-testid={`vmstat-${name}`}>
                      {formatNumber(value)}
                    </td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}
