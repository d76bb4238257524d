import { join } from "node:path";
import { type DiskPartition, readPartitions } from "./pmem-layout.ts";
import { exists, list, readInteger, readLine, readText } from "./sysfs.ts";

/**
 * Memory-failure and memory-device state of one host, from `<root>` (KERNEL-SOURCES.md
 * §1.3–1.7). Every source is optional; on the development machines all of them but
 * `/sys/bus/nd` are absent (§0), and that is a normal result, not an error.
 */
export interface MemorySnapshot {
  /** NUMA nodes that have `memory_failure/` (CONFIG_MEMORY_FAILURE, 6.3+). */
  nodes: NodeMemoryFailure[];
  /** `HardwareCorrupted` in /proc/meminfo, in bytes; null when the line is absent. */
  hardwareCorruptedBytes: number | null;
  /** null: no `/sys/devices/system/edac/mc` (CONFIG_EDAC off). */
  edac: EdacController[] | null;
  /** pmem block devices and nd regions with their known-bad ranges. */
  pmem: PmemDevice[];
  /** Device-DAX instances (`/sys/bus/dax/devices/daxX.Y`). */
  dax: DaxDevice[];
  /** Which source directories exist (for the start-up probe). */
  present: { memoryFailure: boolean; edac: boolean; nd: boolean; dax: boolean; meminfo: boolean };
}

export interface NodeMemoryFailure {
  node: string;
  total: number | null;
  ignored: number | null;
  failed: number | null;
  delayed: number | null;
  recovered: number | null;
}

export interface EdacLocation {
  /** `csrow0`, `csrow0/ch1`, `dimm3`, `rank2`; `noinfo` for errors not attributed to a DIMM. */
  id: string;
  layout: "csrow" | "channel" | "dimm" | "rank" | "noinfo";
  label: string | null;
  location: string | null;
  ceCount: number | null;
  ueCount: number | null;
}

export interface EdacController {
  mc: string;
  name: string | null;
  sizeMb: number | null;
  ceCount: number | null;
  ueCount: number | null;
  secondsSinceReset: number | null;
  /** Both sysfs layouts (§1.6): legacy csrow (+ channels) and the DIMM/rank layer. */
  locations: EdacLocation[];
}

export interface BadRange {
  /** 512-byte sectors, as the kernel prints them (block/badblocks.c). */
  startSector: number;
  sectors: number;
}

export interface PmemDevice {
  /** `pmem0` (block device) or `region0` (nd region). */
  device: string;
  type: "pmem" | "region";
  sizeBytes: number | null;
  /**
   * `none-known`: the file is empty — the kernel knows of no bad blocks, which only
   * means "not scanned (or nothing consumed)", not "clean" (ndctl issue #54).
   * `unsupported`: no badblocks file.
   */
  badblocksState: "known" | "none-known" | "unsupported";
  badblocks: BadRange[];
  /** The file is cut at one page; more ranges may exist than it shows. */
  badblocksTruncated: boolean;
  /** Partitions of a pmem disk (mirror legs may be on them); [] for regions. */
  partitions: DiskPartition[];
}

export interface DaxDevice {
  device: string;
  sizeBytes: number | null;
  /** Physical start address (hex as printed) when the kernel shows it. */
  resource: string | null;
  numaNode: number | null;
}

/** `badblocks` text: `<start> <length>` per line, decimal, 512-byte sectors. */
export function parseBadblocks(text: string): { ranges: BadRange[]; truncated: boolean } {
  const ranges: BadRange[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(line);
    if (!m) continue;
    const startSector = Number(m[1]);
    const sectors = Number(m[2]);
    if (Number.isSafeInteger(startSector) && Number.isSafeInteger(sectors) && sectors > 0)
      ranges.push({ startSector, sectors });
  }
  // badblocks_show stops at PAGE_SIZE; a file that long may be cut.
  return { ranges, truncated: Buffer.byteLength(text) >= 4096 - 32 };
}

/** `HardwareCorrupted:  <N> kB` → bytes; null when the line is absent. */
export function parseHardwareCorrupted(meminfo: string): number | null {
  const m = /^HardwareCorrupted:\s+(\d+)\s*kB\s*$/m.exec(meminfo);
  return m ? Number(m[1]) * 1024 : null;
}

async function readNodes(root: string): Promise<NodeMemoryFailure[]> {
  const base = join(root, "sys/devices/system/node");
  const out: NodeMemoryFailure[] = [];
  for (const node of await list(base, /^node\d+$/)) {
    const dir = join(base, node, "memory_failure");
    if (!(await exists(dir))) continue;
    const [total, ignored, failed, delayed, recovered] = await Promise.all(
      ["total", "ignored", "failed", "delayed", "recovered"].map((f) => readInteger(join(dir, f))),
    );
    out.push({
      node,
      total: total ?? null,
      ignored: ignored ?? null,
      failed: failed ?? null,
      delayed: delayed ?? null,
      recovered: recovered ?? null,
    });
  }
  return out;
}

async function readEdac(root: string): Promise<EdacController[] | null> {
  const base = join(root, "sys/devices/system/edac/mc");
  if (!(await exists(base))) return null;
  const controllers: EdacController[] = [];
  for (const mc of await list(base, /^mc\d+$/)) {
    const dir = join(base, mc);
    const [ceCount, ueCount, ceNoinfo, ueNoinfo, sizeMb, secondsSinceReset, name] =
      await Promise.all([
        readInteger(join(dir, "ce_count")),
        readInteger(join(dir, "ue_count")),
        readInteger(join(dir, "ce_noinfo_count")),
        readInteger(join(dir, "ue_noinfo_count")),
        readInteger(join(dir, "size_mb")),
        readInteger(join(dir, "seconds_since_reset")),
        readLine(join(dir, "mc_name")),
      ]);
    const locations: EdacLocation[] = [];
    if (ceNoinfo !== null || ueNoinfo !== null)
      locations.push({
        id: "noinfo",
        layout: "noinfo",
        label: null,
        location: null,
        ceCount: ceNoinfo,
        ueCount: ueNoinfo,
      });
    for (const entry of await list(dir, /^(csrow|dimm|rank)\d+$/)) {
      const sub = join(dir, entry);
      if (entry.startsWith("csrow")) {
        const [ce, ue] = await Promise.all([
          readInteger(join(sub, "ce_count")),
          readInteger(join(sub, "ue_count")),
        ]);
        locations.push({
          id: entry,
          layout: "csrow",
          label: null,
          location: null,
          ceCount: ce,
          ueCount: ue,
        });
        const channels = (await list(sub, /^ch\d+_ce_count$/)).map((f) =>
          f.slice(0, -"_ce_count".length),
        );
        for (const ch of channels) {
          const [chCe, label] = await Promise.all([
            readInteger(join(sub, `${ch}_ce_count`)),
            readLine(join(sub, `${ch}_dimm_label`)),
          ]);
          locations.push({
            id: `${entry}/${ch}`,
            layout: "channel",
            label,
            location: null,
            ceCount: chCe,
            ueCount: null,
          });
        }
      } else {
        const [ce, ue, label, location] = await Promise.all([
          readInteger(join(sub, "dimm_ce_count")),
          readInteger(join(sub, "dimm_ue_count")),
          readLine(join(sub, "dimm_label")),
          readLine(join(sub, "dimm_location")),
        ]);
        locations.push({
          id: entry,
          layout: entry.startsWith("dimm") ? "dimm" : "rank",
          label,
          location,
          ceCount: ce,
          ueCount: ue,
        });
      }
    }
    controllers.push({ mc, name, sizeMb, ceCount, ueCount, secondsSinceReset, locations });
  }
  return controllers;
}

async function readBadblocksOf(
  dir: string,
): Promise<Pick<PmemDevice, "badblocksState" | "badblocks" | "badblocksTruncated">> {
  const text = await readText(join(dir, "badblocks"));
  if (text === null)
    return { badblocksState: "unsupported", badblocks: [], badblocksTruncated: false };
  const { ranges, truncated } = parseBadblocks(text);
  return {
    badblocksState: ranges.length > 0 ? "known" : "none-known",
    badblocks: ranges,
    badblocksTruncated: truncated,
  };
}

async function readPmem(root: string): Promise<PmemDevice[]> {
  const out: PmemDevice[] = [];
  const blockDir = join(root, "sys/block");
  for (const dev of await list(blockDir, /^pmem\d+(\.\d+)?s?$/)) {
    const dir = join(blockDir, dev);
    const sectors = await readInteger(join(dir, "size")); // always 512-byte units
    out.push({
      device: dev,
      type: "pmem",
      sizeBytes: sectors === null ? null : sectors * 512,
      ...(await readBadblocksOf(dir)),
      partitions: await readPartitions(root, dev),
    });
  }
  const ndDir = join(root, "sys/bus/nd/devices");
  for (const region of await list(ndDir, /^region\d+$/)) {
    const dir = join(ndDir, region);
    out.push({
      device: region,
      type: "region",
      sizeBytes: await readInteger(join(dir, "size")),
      ...(await readBadblocksOf(dir)),
      partitions: [],
    });
  }
  return out;
}

async function readDax(root: string): Promise<DaxDevice[]> {
  const base = join(root, "sys/bus/dax/devices");
  const out: DaxDevice[] = [];
  for (const dev of await list(base, /^dax\d+\.\d+$/)) {
    const dir = join(base, dev);
    const [sizeBytes, resource, numaNode] = await Promise.all([
      readInteger(join(dir, "size")),
      readLine(join(dir, "resource")),
      readText(join(dir, "numa_node")),
    ]);
    const node = numaNode === null ? null : Number.parseInt(numaNode.trim(), 10);
    out.push({ device: dev, sizeBytes, resource, numaNode: Number.isInteger(node) ? node : null });
  }
  return out;
}

export async function readMemory(root: string): Promise<MemorySnapshot> {
  const [nodes, meminfo, edac, pmem, dax, nd, daxBus] = await Promise.all([
    readNodes(root),
    readText(join(root, "proc/meminfo")),
    readEdac(root),
    readPmem(root),
    readDax(root),
    exists(join(root, "sys/bus/nd")),
    exists(join(root, "sys/bus/dax")),
  ]);
  return {
    nodes,
    hardwareCorruptedBytes: meminfo === null ? null : parseHardwareCorrupted(meminfo),
    edac,
    pmem,
    dax,
    present: {
      memoryFailure: nodes.length > 0,
      edac: edac !== null,
      nd,
      dax: daxBus,
      meminfo: meminfo !== null && parseHardwareCorrupted(meminfo) !== null,
    },
  };
}

/** Time-series points for the sample store (stable `series` names). */
export function memorySeries(s: MemorySnapshot): Array<[string, number]> {
  const points: Array<[string, number]> = [];
  for (const n of s.nodes)
    for (const k of ["total", "ignored", "failed", "delayed", "recovered"] as const) {
      const v = n[k];
      if (v !== null) points.push([`memory_failure.${n.node}.${k}`, v]);
    }
  if (s.hardwareCorruptedBytes !== null)
    points.push(["meminfo.hardware_corrupted_bytes", s.hardwareCorruptedBytes]);
  for (const mc of s.edac ?? []) {
    if (mc.ceCount !== null) points.push([`edac.${mc.mc}.ce_count`, mc.ceCount]);
    if (mc.ueCount !== null) points.push([`edac.${mc.mc}.ue_count`, mc.ueCount]);
    for (const l of mc.locations) {
      const id = l.id.replace("/", ".");
      if (l.ceCount !== null) points.push([`edac.${mc.mc}.${id}.ce_count`, l.ceCount]);
      if (l.ueCount !== null) points.push([`edac.${mc.mc}.${id}.ue_count`, l.ueCount]);
    }
  }
  for (const p of s.pmem)
    points.push([
      `pmem.${p.device}.badblocks_sectors`,
      p.badblocks.reduce((a, r) => a + r.sectors, 0),
    ]);
  return points;
}
