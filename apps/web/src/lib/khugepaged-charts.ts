// What the khugepaged page charts, shared by its server component (which prefetches the
// first chart data, issue 13) and the view, so both ask for the same series.

export const chartedSeries = [
  "khugepaged.pages_collapsed",
  "khugepaged.full_scans",
  "vmstat.thp_collapse_alloc",
  "vmstat.thp_collapse_alloc_failed",
  "vmstat.thp_fault_alloc",
  "vmstat.thp_fault_fallback",
  "vmstat.nr_anon_transparent_hugepages",
  "vmstat.thp_split_page",
];

/** The charts' time window when the page opens. */
export const defaultChartWindowMs = 15 * 60_000;
