"use client";

import dynamic from "next/dynamic";
import { useEffect, useRef } from "react";
import type { TTimelinePoint } from "../server/timeline";

// recharts is loaded after the page is shown (see series-chart.tsx).
const TimelinePlot = dynamic(() => import("./timeline-plot").then((m) => m.TimelinePlot), {
  ssr: false,
});

/** One bucket of the shared time axis, as `khugepaged.timeline` sends it (type only). */
export type TimelinePoint = TTimelinePoint;

/**
 * khugepaged activity, error and resync events, and the resync rate on one time axis
 * (DASHBOARD.md edge 10). The server down-samples to `buckets` points: the width this
 * chart reports through `onWidth` (about one point per pixel).
 */
export function TimelineChart({
  points,
  bucketMs,
  resyncScope,
  onResyncScope,
  onWidth,
}: {
  points: TimelinePoint[];
  bucketMs: number;
  resyncScope: "cluster" | "node";
  onResyncScope: (scope: "cluster" | "node") => void;
  onWidth: (px: number) => void;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const report = () => onWidth(el.clientWidth);
    report();
    const observer = new ResizeObserver(report);
    observer.observe(el);
    return () => observer.disconnect();
  }, [onWidth]);
  const peak = points.reduce((m, p) => Math.max(m, p.resyncRate), 0);
  return (
    <div className="panel wide" data-testid="timeline">
      <h2>One time axis: khugepaged activity, memory and device errors, resyncs and their rate</h2>
      <p className="muted">
        {points.length} points of{" "}
        {bucketMs >= 60_000 ? `${bucketMs / 60_000} min` : `${bucketMs / 1000} s`}. Resync rate:{" "}
        <select
          aria-label="resync rate scope"
          value={resyncScope}
          onChange={(e) => onResyncScope(e.target.value === "node" ? "node" : "cluster")}
        >
          <option value="cluster">every node's resyncs (mirrors span hosts)</option>
          <option value="node">resyncs this node ran</option>
        </select>{" "}
        peak{" "}
        <strong data-testid="resync-rate-peak" data-value={peak}>
          {peak.toLocaleString("en-US", { maximumFractionDigits: 1 })}
        </strong>{" "}
        regions/s
      </p>
      <div ref={box} style={{ width: "100%", height: 240 }}>
        <TimelinePlot points={points} />
      </div>
    </div>
  );
}
