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
import type { ChartPoint } from "./series-chart";

const timeFormat = new Intl.DateTimeFormat("en-GB", {
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/** The plot of a SeriesChart: recharts, loaded after the page is shown (series-chart.tsx). */
export function SeriesPlot({
  title,
  points,
  color,
}: {
  title: string;
  points: ChartPoint[];
  color: string;
}) {
  return (
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
  );
}
