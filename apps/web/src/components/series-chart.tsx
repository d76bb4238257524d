"use client";

import dynamic from "next/dynamic";

// recharts (~390 KB of JavaScript) is loaded after the page is shown, not before its first
// paint (issue 13: LCP): the panel and its title are rendered at once, the plot when ready.
const SeriesPlot = dynamic(() => import("./series-plot").then((m) => m.SeriesPlot), {
  ssr: false,
});

export interface ChartPoint {
  t: number;
  v: number;
}

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
        <SeriesPlot title={title} points={points} color={color} />
      </div>
    </div>
  );
}
