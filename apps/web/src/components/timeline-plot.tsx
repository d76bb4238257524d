"use client";

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
import { chartGrid, timeAxisProps, timeTooltipProps } from "./chart-style";
import type { TimelinePoint } from "./timeline-chart";

const timeFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });

/** The plot of a TimelineChart: recharts, loaded after the page is shown (timeline-chart.tsx). */
export function TimelinePlot({ points }: { points: TimelinePoint[] }) {
  return (
    <ResponsiveContainer>
      <ComposedChart data={points} margin={{ top: 4, right: 8, bottom: 0, left: 0 }}>
        <CartesianGrid {...chartGrid} />
        <XAxis {...timeAxisProps(timeFormat)} />
        <YAxis yAxisId="activity" stroke="#8b9bb0" fontSize={11} width={56} allowDecimals={false} />
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
  );
}
