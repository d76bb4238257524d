import type { TMirrorSort } from "~/stores/mirrors-view";

// Sorting and filtering the mirrors list in the browser (it holds every mirror the agents
// report; the server already orders it least-in-sync first).

export interface TMirrorRow {
  uuid: string;
  name: string | null;
  regionCount: number;
  percent: number;
  nodes: string[];
  logType: string | null;
  regionBytes: number | null;
  sizeBytes: number | null;
  inSync: number;
  legs: { device: string; label: string | null; health: string }[] | null;
}

/** Legs with an error (not `A`); unknown legs sort after every known count. */
function legTrouble(row: TMirrorRow): number | null {
  return row.legs ? row.legs.filter((l) => l.health !== "A").length : null;
}

const keys: Record<TMirrorSort, (row: TMirrorRow) => string | number | null> = {
  mirror: (r) => r.name ?? r.uuid,
  size: (r) => r.sizeBytes,
  regionSize: (r) => r.regionBytes,
  logType: (r) => r.logType,
  regions: (r) => r.regionCount,
  inSync: (r) => r.percent,
  legs: legTrouble,
};

/** A stable sort by `sort`; unknown values (null) last in either direction. */
export function sortMirrors<T extends TMirrorRow>(
  rows: readonly T[],
  sort: TMirrorSort | null,
  descending: boolean,
): T[] {
  if (sort === null) return [...rows];
  const key = keys[sort];
  return [...rows].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
    const order =
      typeof x === "number" && typeof y === "number"
        ? x - y
        : String(x).localeCompare(String(y), "en", { numeric: true });
    return descending ? -order : order;
  });
}

/**
 * Every word must match somewhere: uuid, name, log type, a node, a leg's device or dm
 * name, or a leg's health character (a capital `D` finds mirrors with a dead leg).
 */
export function matchesFilter(row: TMirrorRow, filter: string): boolean {
  const words = filter.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return true;
  const fields = [
    row.uuid,
    row.name ?? "",
    row.logType ?? "",
    ...row.nodes,
    ...(row.legs ?? []).flatMap((l) => [l.device, l.label ?? ""]),
  ].map((f) => f.toLowerCase());
  const health = new Set((row.legs ?? []).map((l) => l.health));
  // A single capital health character means the health, not every name containing it.
  return words.every((w) =>
    /^[AFDSRU]$/.test(w) ? health.has(w) : fields.some((f) => f.includes(w.toLowerCase())),
  );
}
