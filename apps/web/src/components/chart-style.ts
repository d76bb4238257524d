// Shared look of the dashboard's time-series charts: a numeric time X axis, the palette's
// grid and axis colours, and a tooltip labelled with the bucket's time. Spread into the
// recharts elements (recharts reads its axes from direct children, so these stay props).
export const chartGrid = { stroke: "#263241", strokeDasharray: "3 3" } as const;

export function timeAxisProps(format: Intl.DateTimeFormat) {
  return {
    dataKey: "t",
    type: "number" as const,
    scale: "time" as const,
    domain: ["dataMin", "dataMax"] as [string, string],
    tickFormatter: (t: number) => format.format(t),
    stroke: "#8b9bb0",
    fontSize: 11,
    minTickGap: 40,
  };
}

export function timeTooltipProps(format: Intl.DateTimeFormat) {
  return {
    labelFormatter: (t: unknown) => format.format(Number(t)),
    contentStyle: { background: "#171e26", border: "1px solid #263241" },
  };
}
