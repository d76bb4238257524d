"use client";

import { useEffect, useRef } from "react";
import {
  Bar,
  CartesianGrid,
  ComposedChart,
  Legend,
  Line,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import type { TTimelinePoint } from "../server/timeline";
import { chartGrid, timeAxisProps, timeTooltipProps } from "./chart-style";

const timeFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });

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
        <ResponsiveContainer>
          <ComposedChart data={points} margin={{ top: 4, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid {...chartGrid} />
            <XAxis {...timeAxisProps(timeFormat)} />
            <YAxis
              yAxisId="activity"
              stroke="#8b9bb0"
              fontSize={11}
              width={56}
              allowDecimals={false}
            />
            <YAxis
              yAxisId="events"
              orientation="right"
              stroke="#8b9bb0"
              fontSize={11}
              width={40}
              allowDecimals={false}
            />
            <YAxis
              yAxisId="rate"
              orientation="right"
              stroke="#39c5cf"
              fontSize={11}
              width={48}
              unit="/s"
            />
            <Tooltip {...timeTooltipProps(timeFormat)} />
            <Legend />
            <Line
              yAxisId="activity"
              type="stepAfter"
              dataKey="collapsed"
              name="pages collapsed / bucket"
              stroke="#3fb950"
              dot={false}
              isAnimationActive={false}
              connectNulls
            />
            <Line
              yAxisId="activity"
              type="stepAfter"
              dataKey="faults"
              name="THP faults / bucket"
              stroke="#a371f7"
              dot={false}
              isAnimationActive={false}
              connectNulls
            />
            <Bar
              yAxisId="events"
              dataKey="memory"
              name="memory errors"
              fill="#f85149"
              isAnimationActive={false}
            />
            <Bar
              yAxisId="events"
              dataKey="device"
              name="device errors"
              fill="#d29922"
              isAnimationActive={false}
            />
            <Bar
              yAxisId="events"
              dataKey="resync"
              name="resync events"
              fill="#4fa3ff"
              isAnimationActive={false}
            />
            <Line
              yAxisId="rate"
              type="stepAfter"
              dataKey="resyncRate"
              name="resync rate (regions/s)"
              stroke="#39c5cf"
              strokeWidth={2}
              dot={false}
              isAnimationActive={false}
              className="resync-rate-line"
            />
          </ComposedChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}
