import type { PmemLayout, PmemNamespace } from "../collectors/pmem-layout.ts";
import type { THostEvent } from "./event.ts";
import type { EventPlacement, MirrorLocation, MirrorMap } from "./mirror-map.ts";
import { placeEvent } from "./mirror-map.ts";

/**
 * Physical memory → pmem device → mirror legs and regions (DASHBOARD.md edge 4). Pure: the
 * layout (read from sysfs by `readPmemLayout`) and the page size are passed in.
 *
 * A pfn is a physical page (pfn × page size = physical address, KERNEL-SOURCES.md
 * conventions). A namespace covers [`resource`, `resource` + `size`); its block device's
 * sector 0 is the first data byte after the info block and memmap reserve (fsdax: the pfn
 * device's `resource`), so device byte = physical address − data start (pmem.c
 * `pmem_pagemap_memory_failure` computes the same offset for the filesystem).
 *
 * Where sysfs does not say where the data starts, the mapping is conservative and says so:
 * data integrity first, over-report regions rather than miss one.
 * - fsdax with an unreadable pfn `resource`: the data start lies somewhere in the reserve
 *   R = namespace size − data size, so the device range is widened by R towards sector 0.
 * - sector mode (BTT) remaps blocks, and a namespace whose data size is unknown: the whole
 *   device (every region of every leg on it).
 * - namespaces whose own address is unreadable (`resource` is root-only) are unknown
 *   places; a failed *device* page (`dax page`) must be on one of them, so each is taken
 *   whole.
 */
export interface MemoryHit {
  namespace: string;
  mode: string | null;
  /** Block device (`pmem0`) or device-DAX instance (`dax2.0`); null when none was found. */
  device: string | null;
  /** Device bytes (inclusive) the failed memory backs; null: anywhere on the device. */
  bytes: { start: bigint; end: bigint } | null;
  /** False when the range was widened (or taken whole) because a position is unknown. */
  exact: boolean;
  /** Part (or all) of the range is the namespace's own metadata, not data. */
  metadata: boolean;
  /** The namespace is no longer on the nd bus: mapped with the last layout that had it. */
  gone: boolean;
  note: string | null;
  locations: Array<MirrorLocation & { device: string }>;
}

export interface MemoryPlacement {
  /** `not_pmem`: every namespace's place is known and none holds the range (DRAM). */
  status: "mapped" | "not_pmem" | "unresolved";
  hits: MemoryHit[];
  reason?: string | undefined;
}

export interface PmemMapOptions {
  layout: PmemLayout;
  /** The host's page size (`hostPageSize`); null: pfns cannot be placed. */
  pageSize: number | null;
  mirrors?: MirrorMap | undefined;
}

const modeNames: Record<string, string> = { fsdax: "fsdax", devdax: "devdax", sector: "sector" };

export class PmemMap {
  private layout: PmemLayout;
  private pageSize: number | null;
  private readonly mirrors: MirrorMap | undefined;

  constructor(options: PmemMapOptions) {
    this.layout = options.layout;
    this.pageSize = options.pageSize;
    this.mirrors = options.mirrors;
  }

  setLayout(layout: PmemLayout): void {
    this.layout = layout;
  }

  get namespaces(): readonly PmemNamespace[] {
    return this.layout.namespaces;
  }

  /**
   * Where the pages `firstPfn`–`lastPfn` are; null when the host has no pmem namespace
   * (nothing to say about DRAM-only hosts). `devicePage`: the kernel said it was a device
   * (ZONE_DEVICE) page — `dax page` — or memory without struct pages ("memory outside
   * kernel control"), so it is pmem even if no namespace address is known.
   */
  placePfns(
    firstPfn: number,
    lastPfn: number,
    options: { devicePage?: boolean } = {},
  ): MemoryPlacement | null {
    if (this.layout.namespaces.length === 0) return null;
    if (this.pageSize === null)
      return {
        status: "unresolved",
        hits: [],
        reason: "the page size of this host is unknown (no /proc/self/smaps under the root)",
      };
    const page = BigInt(this.pageSize);
    return this.placePhysical(BigInt(firstPfn) * page, (BigInt(lastPfn) + 1n) * page - 1n, options);
  }

  /** Physical bytes `start`–`end` (inclusive). */
  placePhysical(
    start: bigint,
    end: bigint,
    options: { devicePage?: boolean } = {},
  ): MemoryPlacement | null {
    const namespaces = this.layout.namespaces;
    if (namespaces.length === 0) return null;
    const hits: MemoryHit[] = [];
    for (const ns of namespaces) {
      if (ns.start === null || ns.size === null) continue;
      const lo = max(start, ns.start);
      const hi = min(end, ns.start + ns.size - 1n);
      if (lo <= hi) hits.push(this.hitIn(ns, lo, hi));
    }
    if (hits.length > 0) return { status: "mapped", hits };
    const unplaced = namespaces.filter((ns) => ns.start === null || ns.size === null);
    if (unplaced.length === 0) return { status: "not_pmem", hits: [] };
    const reason = `the physical address of ${unplaced.map((n) => n.name).join(", ")} is unreadable (namespace resource is root-only)`;
    if (!options.devicePage) return { status: "unresolved", hits: [], reason };
    // A device page that is on none of the known namespaces is on one of the unknown ones.
    return {
      status: "unresolved",
      reason,
      hits: unplaced.map((ns) =>
        this.wholeHit(
          ns,
          "a device (pmem) page failed and this namespace's place is unknown: the whole device may be affected",
        ),
      ),
    };
  }

  /**
   * Every leg on a memory device named by the kernel or sysfs — a block device, one of its
   * partitions, a namespace, its pfn/btt/dax holder, a device-DAX instance or a whole
   * region — each affected whole (the device is gone or going).
   */
  locateDevice(name: string): {
    devices: string[];
    locations: Array<MirrorLocation & { device: string }>;
  } {
    const namespaces = this.layout.namespaces.filter(
      (ns) =>
        ns.name === name ||
        ns.holder === name ||
        ns.blockDevice === name ||
        ns.daxDevice === name ||
        ns.region === name,
    );
    const locations: Array<MirrorLocation & { device: string }> = [];
    const devices: string[] = [];
    for (const ns of namespaces) {
      const device = ns.blockDevice ?? ns.daxDevice;
      if (device === null) continue;
      devices.push(device);
      for (const l of this.locateWhole(ns)) push(locations, l);
    }
    const partitionOf = this.layout.namespaces.find((ns) =>
      ns.partitions.some((p) => p.name === name),
    );
    if (partitionOf) {
      const p = partitionOf.partitions.find((q) => q.name === name)!;
      devices.push(name);
      for (const l of this.mirrors?.locateOnDisk(name, null, { diskSectors: p.sectors }) ?? [])
        push(locations, l);
    }
    if (devices.length === 0) {
      devices.push(name);
      for (const l of this.mirrors?.locateOnDisk(name, null) ?? []) push(locations, l);
    }
    return { devices, locations };
  }

  private locateWhole(ns: PmemNamespace): Array<MirrorLocation & { device: string }> {
    if (!this.mirrors) return [];
    if (ns.blockDevice !== null)
      return this.mirrors.locateOnDisk(ns.blockDevice, null, {
        diskSectors: ns.blockSectors,
        partitions: ns.partitions,
      });
    if (ns.daxDevice !== null)
      return this.mirrors.locateAll(ns.daxDevice).map((l) => ({ ...l, device: ns.daxDevice! }));
    return [];
  }

  private wholeHit(ns: PmemNamespace, note: string): MemoryHit {
    return {
      namespace: ns.name,
      mode: ns.mode,
      device: ns.blockDevice ?? ns.daxDevice,
      bytes: null,
      exact: false,
      metadata: false,
      gone: ns.gone === true,
      note,
      locations: this.locateWhole(ns),
    };
  }

  /** Only the namespace's own metadata (info block, memmap, truncated tail): no data. */
  private metadataHit(ns: PmemNamespace, name: string): MemoryHit {
    return {
      namespace: ns.name,
      mode: ns.mode,
      device: ns.blockDevice ?? ns.daxDevice,
      bytes: null,
      exact: true,
      metadata: true,
      gone: ns.gone === true,
      note: `in the namespace's info block / memmap reserve, not in ${name}'s data`,
      locations: [],
    };
  }

  /** The part `lo`–`hi` (physical, inside the namespace) of a failed range. */
  private hitIn(ns: PmemNamespace, lo: bigint, hi: bigint): MemoryHit {
    const name = ns.blockDevice ?? ns.daxDevice ?? ns.name;
    if (!ns.positional)
      return this.wholeHit(
        ns,
        `sector mode (BTT) remaps blocks: this memory may hold any sector of ${name}`,
      );
    let bytes: { start: bigint; end: bigint } | null;
    let exact = true;
    let metadata = false;
    let note: string | null = null;
    if (ns.dataStart !== null) {
      const dataEnd = ns.dataSize !== null ? ns.dataStart + ns.dataSize - 1n : null;
      const dlo = max(lo, ns.dataStart);
      const dhi = dataEnd === null ? hi : min(hi, dataEnd);
      metadata = lo < ns.dataStart || (dataEnd !== null && hi > dataEnd);
      bytes = dlo <= dhi ? { start: dlo - ns.dataStart, end: dhi - ns.dataStart } : null;
      if (bytes === null) return this.metadataHit(ns, name);
      if (metadata) note = "partly in the namespace's info block / memmap reserve";
    } else if (ns.start !== null && ns.size !== null && ns.dataSize !== null) {
      // The first data byte lies somewhere in [start, start + R]: every device offset the
      // failed bytes could have is covered by widening towards sector 0 by R.
      const reserve = ns.size - ns.dataSize;
      exact = false;
      const from = lo - ns.start - reserve;
      const to = min(hi - ns.start, ns.dataSize - 1n);
      if (from > to) return this.metadataHit(ns, name);
      bytes = { start: from > 0n ? from : 0n, end: to };
      note = `data offset unknown (the ${ns.holder ?? "pfn"} resource is unreadable): widened by the ${reserve}-byte info-block/memmap reserve`;
    } else {
      return this.wholeHit(
        ns,
        `data offset and data size of ${name} unknown: the whole device may be affected`,
      );
    }
    const sectors = { start: bytes.start / 512n, end: bytes.end / 512n };
    const locations: Array<MirrorLocation & { device: string }> = !this.mirrors
      ? []
      : ns.blockDevice !== null
        ? this.mirrors.locateOnDisk(ns.blockDevice, sectors, {
            diskSectors: ns.blockSectors,
            partitions: ns.partitions,
          })
        : ns.daxDevice !== null
          ? this.mirrors
              .locateAll(ns.daxDevice, { ...bytes, unit: "byte" })
              .map((l) => ({ ...l, device: ns.daxDevice! }))
          : [];
    return {
      namespace: ns.name,
      mode: ns.mode,
      device: ns.blockDevice ?? ns.daxDevice,
      bytes,
      exact,
      metadata,
      gone: ns.gone === true,
      note,
      locations,
    };
  }
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
function push(
  into: Array<MirrorLocation & { device: string }>,
  l: MirrorLocation & { device: string },
): void {
  if (!into.some((o) => o.mirror === l.mirror && o.leg === l.leg)) into.push(l);
}

/** JSON-safe description of a placement for `event.data.memoryMap`. */
export function describePlacement(p: MemoryPlacement): Record<string, unknown> {
  return {
    status: p.status,
    ...(p.reason ? { reason: p.reason } : {}),
    hits: p.hits.map((h) => ({
      namespace: h.namespace,
      mode: h.mode,
      device: h.device,
      sectors:
        h.bytes === null
          ? h.metadata
            ? null
            : "whole"
          : { start: String(h.bytes.start / 512n), end: String(h.bytes.end / 512n) },
      bytes: h.bytes === null ? null : { start: String(h.bytes.start), end: String(h.bytes.end) },
      exact: h.exact,
      ...(h.metadata ? { metadata: true } : {}),
      ...(h.gone ? { gone: true } : {}),
      ...(h.note ? { note: h.note } : {}),
      legs: h.locations.map((l) => ({
        device: l.device,
        mirror: l.mirror,
        leg: l.leg,
        ...(l.regions ? { regions: l.regions } : {}),
      })),
    })),
  };
}

function summary(p: MemoryPlacement): string {
  // DRAM, or nowhere known: `data.memoryMap` says which and why; the message stays as is.
  if (p.hits.length === 0) return "";
  const parts = p.hits.map((h) => {
    const where = `${h.device ?? h.namespace} (${h.device ? `${h.namespace}, ` : ""}${modeNames[h.mode ?? ""] ?? h.mode ?? "mode unknown"})`;
    if (h.bytes === null)
      return h.metadata ? `${where}: namespace metadata, no data` : `${where}: whole device`;
    const s = h.bytes.start / 512n;
    const e = h.bytes.end / 512n;
    return `${where} sector${s === e ? ` ${s}` : `s ${s}–${e}`}${h.exact ? "" : " (widened: data offset unknown)"}`;
  });
  return ` — on ${parts.join("; ")}`;
}

/**
 * The event(s) for a memory failure once placed: the device it hit, `data.memoryMap`, and
 * one event per mirror leg it touches (`placeEvent`). A placement with no hit (DRAM, or
 * nowhere known) leaves the event as it is, apart from saying so in `data`.
 */
export function applyMemoryPlacement(
  event: THostEvent,
  placement: MemoryPlacement | null,
): THostEvent[] {
  if (placement === null) return [event];
  const placed: THostEvent = {
    ...event,
    message: `${event.message}${summary(placement)}`,
    data: { ...event.data, memoryMap: describePlacement(placement) },
  };
  const placements: EventPlacement[] = [];
  for (const hit of placement.hits) {
    if (hit.locations.length === 0) placements.push({ device: hit.device, location: null });
    for (const l of hit.locations)
      placements.push({
        device: hit.device,
        location: { mirror: l.mirror, leg: l.leg, regions: l.regions },
      });
  }
  return placeEvent(placed, placements);
}
