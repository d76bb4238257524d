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

const timeFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit" });

export interface TimelinePoint {
  t: number;
  collapsed: number | null;
  faults: number | null;
  memory: number;
  device: number;
  resync: number;
}

/** khugepaged activity and error/resync events on one time axis. */
export function TimelineChart({ points }: { points: TimelinePoint[] }) {
  return (
    <div className="panel wide" data-testid="timeline">
      <h2>One time axis: khugepaged activity, memory and device errors, resyncs</h2>
      <div style={{ width: "100%", height: 240 }}>
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
          </ComposedChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}
