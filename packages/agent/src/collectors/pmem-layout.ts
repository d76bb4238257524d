import { join } from "node:path";
import { list, readLine } from "./sysfs.ts";

/**
 * Where each pmem namespace sits in physical memory and which device presents it, read
 * from the nd bus under `<root>` — what it takes to turn a failed pfn into sectors of a
 * block device. Formats are the kernel's (drivers/nvdimm/namespace_devs.c, pfn_devs.c,
 * drivers/dax/bus.c; KERNEL-SOURCES.md §1.7):
 *
 * - `namespaceR.N/resource`: physical start, `%#llx`; root-only (0400) and ENXIO while the
 *   namespace has no allocation. `size`: bytes, decimal.
 * - `namespaceR.N/mode`: the kernel's words `memory` (ndctl "fsdax"), `dax` ("devdax"),
 *   `safe` ("sector", BTT), `raw`. `holder`: the claiming device (`pfnR.M`, `daxR.M`,
 *   `bttR.M`) or empty.
 * - `pfnR.M/resource`: physical address of the first data byte, i.e. namespace start +
 *   start_pad + the info-block/memmap reserve (`dataoff`); `size`: the data bytes. Both
 *   ENXIO while the pfn device is not enabled; `resource` is root-only.
 * - The block device is a child of the device that attached it: `<holder>/block/pmemX`
 *   (fsdax, sector) or `namespaceR.N/block/pmemX` (raw). Its sector 0 is that first data
 *   byte (pmem.c `to_offset`: sector × 512 + data_offset). Partitions: `/sys/block/pmemX/
 *   pmemXpK/{start,size}` in 512-byte sectors.
 * - devdax: the device-DAX instance `daxR.N` (a child of the nd `daxR.M` holder, also on
 *   `/sys/bus/dax/devices`) shows `resource` (physical start of its data) and `size`.
 *
 * Every file is optional: what cannot be read is null and the mapping says so.
 */
export type TNamespaceMode = "fsdax" | "devdax" | "sector" | "raw";

export interface DiskPartition {
  /** `pmem0p1` */
  name: string;
  /** 512-byte sectors from the start of the disk. */
  startSector: number;
  sectors: number;
}

export interface PmemNamespace {
  /** `namespace0.0` */
  name: string;
  /** `region0` (the kernel names namespaces `namespace<region>.<id>`). */
  region: string;
  mode: TNamespaceMode | null;
  /** `mode` as the kernel printed it (`memory`, `dax`, `safe`, `raw`). */
  kernelMode: string | null;
  holder: string | null;
  /** Physical start and size of the namespace; start is null when `resource` is unreadable. */
  start: bigint | null;
  size: bigint | null;
  /**
   * Physical address of byte 0 of the block or DAX device, and how many bytes follow.
   * null when sysfs does not show it (pfn `resource` root-only or disabled).
   */
  dataStart: bigint | null;
  dataSize: bigint | null;
  /** False for BTT (`sector` mode): its map moves blocks, so a page is not a fixed sector. */
  positional: boolean;
  /** `pmem0`, `pmem0.1`, `pmem3s`; null for devdax or when not found. */
  blockDevice: string | null;
  blockSectors: number | null;
  partitions: DiskPartition[];
  /** Device-DAX instance (`dax2.0`) of a devdax namespace. */
  daxDevice: string | null;
  /** Not on the nd bus any more: kept from the last layout that had it (`mergeLayouts`). */
  gone?: boolean | undefined;
}

export interface PmemLayout {
  namespaces: PmemNamespace[];
}

export const emptyPmemLayout: PmemLayout = { namespaces: [] };

/** `0x…` as `%#llx` prints it (0 prints as `0`); null for anything else. */
export function parseHex(text: string | null): bigint | null {
  if (text === null) return null;
  if (/^0x[0-9a-fA-F]{1,16}$/.test(text)) return BigInt(text);
  return text === "0" ? 0n : null;
}

export function parseDecimal(text: string | null): bigint | null {
  return text !== null && /^\d{1,20}$/.test(text) ? BigInt(text) : null;
}

const modes: Record<string, TNamespaceMode> = {
  memory: "fsdax",
  dax: "devdax",
  safe: "sector",
  raw: "raw",
  // ndctl's names, accepted too (recorded trees and older tools write them).
  fsdax: "fsdax",
  devdax: "devdax",
  sector: "sector",
};

/** Partitions of a disk: `/sys/block/<disk>/<disk>pK/{start,size}`. */
export async function readPartitions(root: string, disk: string): Promise<DiskPartition[]> {
  const dir = join(root, "sys/block", disk);
  const escaped = disk.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const out: DiskPartition[] = [];
  for (const name of await list(dir, new RegExp(`^${escaped}p\\d+$`))) {
    const [start, size] = await Promise.all([
      parseDecimal(await readLine(join(dir, name, "start"))),
      parseDecimal(await readLine(join(dir, name, "size"))),
    ]);
    if (start === null || size === null) continue;
    out.push({ name, startSector: Number(start), sectors: Number(size) });
  }
  return out;
}

async function firstEntry(dir: string, pattern: RegExp): Promise<string | null> {
  return (await list(dir, pattern))[0] ?? null;
}

async function readNamespace(root: string, name: string): Promise<PmemNamespace | null> {
  const nd = join(root, "sys/bus/nd/devices");
  const dir = join(nd, name);
  const [kernelMode, holderText, startText, sizeText] = await Promise.all([
    readLine(join(dir, "mode")),
    readLine(join(dir, "holder")),
    readLine(join(dir, "resource")),
    readLine(join(dir, "size")),
  ]);
  const size = parseDecimal(sizeText);
  // Seed namespaces (size 0) hold nothing.
  if (size === 0n) return null;
  const holder = holderText && /^(pfn|dax|btt)\d+\.\d+$/.test(holderText) ? holderText : null;
  // The claim decides the personality (namespace_devs.c mode_show); `mode` is the fallback.
  const mode: TNamespaceMode | null = holder?.startsWith("pfn")
    ? "fsdax"
    : holder?.startsWith("dax")
      ? "devdax"
      : holder?.startsWith("btt")
        ? "sector"
        : kernelMode !== null && Object.hasOwn(modes, kernelMode)
          ? modes[kernelMode]!
          : null;
  const start = parseHex(startText);
  const ns: PmemNamespace = {
    name,
    region: `region${name.slice("namespace".length).split(".")[0]}`,
    mode,
    kernelMode,
    holder,
    start,
    size,
    dataStart: null,
    dataSize: null,
    positional: mode !== "sector",
    blockDevice: null,
    blockSectors: null,
    partitions: [],
    daxDevice: null,
  };
  if (mode === "devdax") {
    // The device-DAX instance is the holder's child; its name is `dax<region>.<ns id>`.
    const fromHolder = holder ? await firstEntry(join(nd, holder), /^dax\d+\.\d+$/) : null;
    const dax = fromHolder ?? `dax${name.slice("namespace".length)}`;
    const daxDir = join(root, "sys/bus/dax/devices", dax);
    const [daxStart, daxSize] = await Promise.all([
      readLine(join(daxDir, "resource")),
      readLine(join(daxDir, "size")),
    ]);
    if (fromHolder !== null || daxSize !== null) ns.daxDevice = dax;
    ns.dataStart = parseHex(daxStart);
    ns.dataSize = parseDecimal(daxSize);
    return ns;
  }
  const attached = holder ?? name;
  const disk = await firstEntry(join(nd, attached, "block"), /^pmem/);
  if (disk !== null) {
    ns.blockDevice = disk;
    const sectors = parseDecimal(await readLine(join(root, "sys/block", disk, "size")));
    ns.blockSectors = sectors === null ? null : Number(sectors);
    ns.partitions = await readPartitions(root, disk);
  }
  if (mode === "fsdax" && holder !== null) {
    const [pfnStart, pfnSize] = await Promise.all([
      readLine(join(nd, holder, "resource")),
      readLine(join(nd, holder, "size")),
    ]);
    ns.dataStart = parseHex(pfnStart);
    ns.dataSize = parseDecimal(pfnSize);
  } else if (holder === null && (mode === "raw" || mode === "fsdax")) {
    // Unclaimed (raw, or `memory` mapped without an info block): no data offset
    // (pmem.c: data_offset stays 0 without a pfn device).
    ns.dataStart = start;
    ns.dataSize = size;
  }
  if (ns.dataSize === null && ns.blockSectors !== null && ns.positional)
    ns.dataSize = BigInt(ns.blockSectors) * 512n;
  return ns;
}

/** Every namespace on the nd bus under `root`; empty when there is none (no pmem). */
export async function readPmemLayout(root: string): Promise<PmemLayout> {
  const nd = join(root, "sys/bus/nd/devices");
  const names = await list(nd, /^namespace\d+\.\d+$/);
  const namespaces = (await Promise.all(names.map((n) => readNamespace(root, n)))).filter(
    (n): n is PmemNamespace => n !== null,
  );
  return { namespaces };
}

/**
 * Names on the nd bus, the pmem block devices (with partitions) and the DAX devices: when
 * this changes, namespaces were created, reconfigured or removed and the layout is read
 * again. Cheap enough for every poll (three directory reads).
 */
export async function pmemLayoutSignature(root: string): Promise<string> {
  const [nd, block, dax] = await Promise.all([
    list(join(root, "sys/bus/nd/devices"), /^(namespace|pfn|dax|btt|region)\d/),
    list(join(root, "sys/class/block"), /^pmem/),
    list(join(root, "sys/bus/dax/devices"), /^dax/),
  ]);
  const disks = block.length > 0 ? block : await list(join(root, "sys/block"), /^pmem/);
  return `${nd.join(",")}|${disks.join(",")}|${dax.join(",")}`;
}

function overlaps(a: PmemNamespace, b: PmemNamespace): boolean {
  if (a.start === null || a.size === null || b.start === null || b.size === null) return false;
  return a.start < b.start + b.size && b.start < a.start + a.size;
}

/**
 * The fresh layout, plus the namespaces of the previous one that are no longer listed,
 * marked `gone`: a device that fails and is removed before the kernel log is read is still
 * found where it was. A gone namespace whose range a present one now covers is dropped.
 */
export function mergeLayouts(fresh: PmemLayout, previous: PmemLayout | null): PmemLayout {
  if (previous === null) return fresh;
  const present = new Set(fresh.namespaces.map((n) => n.name));
  const kept = previous.namespaces
    .filter((old) => !present.has(old.name))
    .filter((old) => !fresh.namespaces.some((n) => overlaps(n, old)))
    .map((old) => ({ ...old, gone: true }));
  return { namespaces: [...fresh.namespaces, ...kept] };
}
