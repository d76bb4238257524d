export function formatAge(from: Date, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - from.getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function formatNumber(n: number | null | undefined): string {
  if (n === null || n === undefined) return "—";
  return n.toLocaleString("en-US");
}

/**
 * A date and time in the reader's own time zone, named ("3 Dec 2026, 07:43:59 CET"), so a
 * time is never read without knowing which zone it is in. `timeZone` is for tests.
 */
export function formatDateTime(d: Date, timeZone?: string): string {
  return d.toLocaleString("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    timeZoneName: "short",
    ...(timeZone ? { timeZone } : {}),
  });
}

/** A time of day in the reader's zone, named ("07:43 CET"). */
export function formatTimeOfDay(d: Date, timeZone?: string): string {
  return d.toLocaleTimeString("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    timeZoneName: "short",
    ...(timeZone ? { timeZone } : {}),
  });
}

/** The same instant in UTC, ISO-like, for the hover text. */
export function formatUtc(d: Date): string {
  return `${d
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d{3}Z$/, "")} UTC`;
}

/** A pfn as the kernel prints it (`Memory failure: 0x7e01: …`): hex with 0x. */
export function formatPfn(pfn: string | bigint): string {
  try {
    return `0x${BigInt(pfn).toString(16)}`;
  } catch {
    return String(pfn);
  }
}

/** An event's range in its unit: pfns in hex like the kernel, sectors and bytes in decimal. */
export function formatRange(
  unit: string | null,
  start: string | null,
  end: string | null,
): string | null {
  if (start === null) return null;
  const show = unit === "pfn" ? formatPfn : (v: string) => v;
  const e = end ?? start;
  return `${unit ?? "range"} ${show(start)}${e === start ? "" : `–${show(e)}`}`;
}
