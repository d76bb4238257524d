/**
 * An honest ETA (DASHBOARD.md edge 1): from the agent's windowed rate, shown as a range
 * (±25 %, the spread a windowed rate typically moves by), or "no estimate" when the
 * agent has no stable rate. Never a single falsely precise number, never negative.
 */
export function formatEta(etaSeconds: number | null | undefined, state: string): string {
  if (state === "done") return "done";
  if (state === "cancelled" || state === "failed") return "—";
  if (state === "paused") return "paused";
  if (
    etaSeconds === null ||
    etaSeconds === undefined ||
    !Number.isFinite(etaSeconds) ||
    etaSeconds < 0
  )
    return "no estimate";
  const lo = Math.max(0, etaSeconds * 0.75);
  const hi = etaSeconds * 1.25;
  return `${formatDuration(lo)} – ${formatDuration(hi)}`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** Clamp displayed progress to [0, 100] and never show 100 % before it is done. */
export function formatPercent(percent: number, done: boolean): string {
  if (!Number.isFinite(percent)) return "—";
  const clamped = Math.min(100, Math.max(0, percent));
  if (!done && clamped >= 99.95) return "99.9 %";
  return `${clamped.toFixed(1)} %`;
}
