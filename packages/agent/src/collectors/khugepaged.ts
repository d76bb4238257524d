import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * khugepaged and THP state of one host, read from `<root>/sys/kernel/mm/transparent_hugepage`
 * and `<root>/proc/vmstat` (KERNEL-SOURCES.md §4). Every file is optional: a kernel without
 * THP, an older kernel without a newer counter, or a fixture tree that lacks a file yields
 * `null` for that value, never an error.
 */
export interface KhugepagedSnapshot {
  /** Whether `<root>/sys/kernel/mm/transparent_hugepage` exists at all. */
  available: boolean;
  /** Writable khugepaged tunables (§4.1), as the kernel prints them (decimal). */
  tunables: Record<KhugepagedTunable, number | null>;
  /** khugepaged's own read-only counters (§4.1): 32-bit, approximate, can wrap. */
  counters: { pagesCollapsed: number | null; fullScans: number | null };
  /** Top-level `[selected]` knobs (§4.2). */
  thp: {
    enabled: string | null;
    defrag: string | null;
    shmemEnabled: string | null;
    hpagePmdSize: number | null;
  };
  /** `thp_*` and collapse-related counters and gauges from /proc/vmstat (§4.3). */
  vmstat: Record<string, number>;
}

export const khugepagedTunables = [
  "pages_to_scan",
  "scan_sleep_millisecs",
  "alloc_sleep_millisecs",
  "defrag",
  "max_ptes_none",
  "max_ptes_swap",
  "max_ptes_shared",
] as const;
export type KhugepagedTunable = (typeof khugepagedTunables)[number];

const thpDir = "sys/kernel/mm/transparent_hugepage";

/** vmstat fields that belong on the khugepaged page (§4.3): THP, collapse and compaction. */
export function isThpVmstatField(name: string): boolean {
  return (
    name.startsWith("thp_") ||
    name.endsWith("_khugepaged") ||
    name === "nr_anon_transparent_hugepages" ||
    name === "nr_shmem_hugepages" ||
    name === "nr_file_hugepages" ||
    name.startsWith("compact_")
  );
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if (isMissing(error)) return null;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  // ENOENT: no such file; ENOTDIR: a parent is missing; EACCES/EPERM: not ours to read;
  // ENODEV/EINVAL: sysfs attribute present but unsupported on this kernel.
  return (
    code === "ENOENT" ||
    code === "ENOTDIR" ||
    code === "EACCES" ||
    code === "EPERM" ||
    code === "ENODEV" ||
    code === "EINVAL"
  );
}

/** A sysfs integer file: one decimal and a newline. Anything else is "unknown", not 0. */
export function parseSysfsInteger(text: string | null): number | null {
  if (text === null) return null;
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return null;
  const value = Number(trimmed);
  return Number.isSafeInteger(value) ? value : null;
}

/** `always [madvise] never` → `madvise` (§4.2). */
export function parseSelected(text: string | null): string | null {
  if (text === null) return null;
  const match = /\[([^\]]+)\]/.exec(text);
  return match?.[1] ?? null;
}

/** `/proc/vmstat`: `name value` per line. Unparseable lines are skipped. */
export function parseVmstat(text: string, keep: (name: string) => boolean): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const space = line.indexOf(" ");
    if (space <= 0) continue;
    const name = line.slice(0, space);
    if (!keep(name)) continue;
    const value = Number(line.slice(space + 1).trim());
    if (Number.isFinite(value)) out[name] = value;
  }
  return out;
}

export async function readKhugepaged(root: string): Promise<KhugepagedSnapshot> {
  const base = join(root, thpDir);
  const available = (await readdir(base).catch(() => null)) !== null;
  const read = (rel: string) => readOptional(join(base, rel));

  const tunableValues = await Promise.all(
    khugepagedTunables.map(async (name) => parseSysfsInteger(await read(`khugepaged/${name}`))),
  );
  const tunables = Object.fromEntries(
    khugepagedTunables.map((name, i) => [name, tunableValues[i] ?? null]),
  ) as Record<KhugepagedTunable, number | null>;

  const [pagesCollapsed, fullScans, enabled, defrag, shmemEnabled, hpagePmdSize, vmstatText] =
    await Promise.all([
      read("khugepaged/pages_collapsed").then(parseSysfsInteger),
      read("khugepaged/full_scans").then(parseSysfsInteger),
      read("enabled").then(parseSelected),
      read("defrag").then(parseSelected),
      read("shmem_enabled").then(parseSelected),
      read("hpage_pmd_size").then(parseSysfsInteger),
      readOptional(join(root, "proc/vmstat")),
    ]);

  return {
    available,
    tunables,
    counters: { pagesCollapsed, fullScans },
    thp: { enabled, defrag, shmemEnabled, hpagePmdSize },
    vmstat: vmstatText === null ? {} : parseVmstat(vmstatText, isThpVmstatField),
  };
}

/** Flattens a snapshot into time-series points (`series` names are stable API). */
export function khugepagedSeries(snapshot: KhugepagedSnapshot): Array<[string, number]> {
  const points: Array<[string, number]> = [];
  for (const [name, value] of Object.entries(snapshot.tunables)) {
    if (value !== null) points.push([`khugepaged.${name}`, value]);
  }
  if (snapshot.counters.pagesCollapsed !== null)
    points.push(["khugepaged.pages_collapsed", snapshot.counters.pagesCollapsed]);
  if (snapshot.counters.fullScans !== null)
    points.push(["khugepaged.full_scans", snapshot.counters.fullScans]);
  for (const [name, value] of Object.entries(snapshot.vmstat))
    points.push([`vmstat.${name}`, value]);
  return points;
}
