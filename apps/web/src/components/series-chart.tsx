"use client";

import {
  CartesianGrid,
  Line,
  LineChart,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import { chartGrid, timeAxisProps, timeTooltipProps } from "./chart-style";

export interface ChartPoint {
  t: number;
  v: number;
}

const timeFormat = new Intl.DateTimeFormat("en-GB", {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** One down-sampled series (the server sends about one point per pixel). */
export function SeriesChart({
  title,
  points,
  color = "#4fa3ff",
}: {
  title: string;
  points: ChartPoint[];
  color?: string;
}) {
  const last = points.at(-1)?.v;
  return (
    <div className="panel" data-testid="chart" data-series={title}>
      <h2>
        {title}{" "}
        <span className="muted">
          {last === undefined ? "no data yet" : `= ${last.toLocaleString("en-US")}`}
        </span>
      </h2>
      <div style={{ width: "100%", height: 180 }}>
        <ResponsiveContainer>
          <LineChart data={points} margin={{ top: 4, right: 8, bottom: 0, left: 0 }}>
            <CartesianGrid {...chartGrid} />
            <XAxis {...timeAxisProps(timeFormat)} />
            <YAxis
              stroke="#8b9bb0"
              fontSize={11}
              width={64}
              allowDecimals={false}
              domain={["auto", "auto"]}
            />
            <Tooltip {...timeTooltipProps(timeFormat)} />
            <Line
              type="stepAfter"
              dataKey="v"
              name={title}
              stroke={color}
              dot={false}
              isAnimationActive={false}
            />
          </LineChart>
        </ResponsiveContainer>
      </div>
    </div>
  );
}
