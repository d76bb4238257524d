/**
 * Freshness on every value (DASHBOARD.md "our edge" 2): a value is "fresh" while its
 * source reports on time, "late" after one missed interval, and "unknown" after three.
 */
export type TFreshness = "fresh" | "late" | "unknown";

export function freshness(lastSeenAt: Date, intervalMs: number, now: Date): TFreshness {
  const age = now.getTime() - lastSeenAt.getTime();
  // A small grace absorbs scheduling jitter and the write's own latency.
  const grace = Math.min(2_000, intervalMs / 2);
  if (age > 3 * intervalMs + grace) return "unknown";
  if (age > intervalMs + grace) return "late";
  return "fresh";
}
