import { z } from "zod";
import type { THostEvent, TRangeUnit } from "./event.ts";

/**
 * Which mirror legs live on which devices, so a failed range can name its mirror and the
 * regions to resync. Configured (`mirrors` in the agent's config file) until the
 * cluster-log server feeds it from the dm-log-userspace constructor arguments.
 */
export const ZMirrorLeg = z
  .object({
    /** Kernel name (`nvme0n1`, `sdb`, `pmem0`) or `major:minor` as dm prints it. */
    device: z.string().min(1),
    /** Other names the kernel may print for the same device (e.g. `259:0`, `dm-3`). */
    aliases: z.array(z.string().min(1)).default([]),
    /** Where the leg's data begins on the device, in 512-byte sectors. */
    startSector: z.number().int().min(0).default(0),
    /** Logical block size, to convert NVMe LBAs to sectors. */
    logicalBlockSize: z.number().int().min(512).default(512),
  })
  .strict();
export const ZMirrorConfig = z
  .object({
    /** The dm device name of the mirror (`vg-lv`, `mirror0`). */
    name: z.string().min(1),
    /** dm-raid1 region size in 512-byte sectors. */
    regionSectors: z.number().int().min(1),
    /** Mirror size in sectors: bounds the region numbers of a whole-device event. */
    sizeSectors: z.number().int().min(1).optional(),
    legs: z.array(ZMirrorLeg).min(1),
    logDevice: z.string().min(1).optional(),
  })
  .strict();
export type TMirrorConfig = z.infer<typeof ZMirrorConfig>;
export type TMirrorConfigInput = z.input<typeof ZMirrorConfig>;

export interface MirrorLocation {
  mirror: string;
  leg: string;
  regions?: { start: number; end: number } | undefined;
}

type TSectorRange = { start: bigint; end: bigint };
type TLegEntry = { mirror: TMirrorConfig; leg: TMirrorConfig["legs"][number] };

/**
 * Pure lookup: device name (+ optional affected range) → mirror, leg and regions. A device
 * may carry several legs (of different mirrors, at different start sectors) and a disk may
 * carry legs on its partitions; `locateAll` and `locateOnDisk` find every one of them.
 */
export class MirrorMap {
  private readonly byDevice = new Map<string, TLegEntry[]>();
  private readonly logs = new Map<string, TMirrorConfig[]>();

  constructor(mirrors: TMirrorConfig[] = []) {
    for (const mirror of mirrors) {
      for (const leg of mirror.legs)
        for (const name of new Set([leg.device, ...leg.aliases])) {
          const entries = this.byDevice.get(name) ?? [];
          entries.push({ mirror, leg });
          this.byDevice.set(name, entries);
        }
      if (mirror.logDevice)
        this.logs.set(mirror.logDevice, [...(this.logs.get(mirror.logDevice) ?? []), mirror]);
    }
  }

  get size(): number {
    return this.byDevice.size;
  }

  /**
   * The first mirror location of `device` (see `locateAll`); a device that carries a leg
   * but not the affected range still names that leg, without regions.
   */
  locate(
    device: string | null,
    range?: { start: bigint; end: bigint; unit: TRangeUnit },
  ): MirrorLocation | null {
    if (device === null) return null;
    const log = this.logs.get(device);
    if (log) return { mirror: log[0]!.name, leg: "log" };
    const all = this.locateAll(device, range);
    if (all.length > 0) return all[0]!;
    const first = this.byDevice.get(device)?.[0];
    return first ? { mirror: first.mirror.name, leg: first.leg.device } : null;
  }

  /**
   * Every mirror leg (and dirty log) on `device` that `range` touches; without a range,
   * every one on it, with all regions of its mirror when the mirror's size is known.
   */
  locateAll(
    device: string,
    range?: { start: bigint; end: bigint; unit: TRangeUnit },
  ): MirrorLocation[] {
    const out: MirrorLocation[] = (this.logs.get(device) ?? []).map((m) => ({
      mirror: m.name,
      leg: "log",
    }));
    for (const { mirror, leg } of this.byDevice.get(device) ?? []) {
      const sectors = range === undefined ? null : toSectors(range, leg.logicalBlockSize);
      const regions = regionsOf(mirror, leg, sectors);
      if (regions === "outside") continue;
      out.push({ mirror: mirror.name, leg: leg.device, regions });
    }
    return out;
  }

  /**
   * Every leg a sector range of a whole disk touches: on the disk itself and on its
   * partitions (sectors made partition-relative). `sectors` null: the whole disk — each leg
   * on it or on one of its partitions is affected from its first to its last region.
   */
  locateOnDisk(
    disk: string,
    sectors: TSectorRange | null,
    layout: {
      diskSectors?: number | null | undefined;
      partitions?: Array<{ name: string; startSector: number; sectors: number }> | undefined;
    } = {},
  ): Array<MirrorLocation & { device: string }> {
    const out: Array<MirrorLocation & { device: string }> = [];
    const whole =
      sectors ??
      (layout.diskSectors != null && layout.diskSectors > 0
        ? { start: 0n, end: BigInt(layout.diskSectors) - 1n }
        : null);
    const at = (device: string, range: TSectorRange | null) => {
      const found =
        range === null
          ? this.locateAll(device)
          : this.locateAll(device, { ...range, unit: "sector" });
      for (const l of found)
        if (!out.some((o) => o.mirror === l.mirror && o.leg === l.leg)) out.push({ ...l, device });
    };
    at(disk, whole);
    for (const p of layout.partitions ?? []) {
      const pStart = BigInt(p.startSector);
      const pEnd = pStart + BigInt(p.sectors) - 1n;
      if (whole === null) {
        at(p.name, p.sectors > 0 ? { start: 0n, end: BigInt(p.sectors) - 1n } : null);
        continue;
      }
      const lo = whole.start > pStart ? whole.start : pStart;
      const hi = whole.end < pEnd ? whole.end : pEnd;
      if (lo <= hi) at(p.name, { start: lo - pStart, end: hi - pStart });
    }
    return out;
  }
}

function toSectors(
  range: { start: bigint; end: bigint; unit: TRangeUnit },
  logicalBlockSize: number,
): TSectorRange | null {
  if (range.unit === "sector") return range;
  if (range.unit === "lba") {
    const per = BigInt(logicalBlockSize / 512);
    return { start: range.start * per, end: (range.end + 1n) * per - 1n };
  }
  if (range.unit === "byte") return { start: range.start / 512n, end: range.end / 512n };
  return null;
}

/** Regions of `mirror` a device sector range hits on `leg`; `outside`: none of its data. */
function regionsOf(
  mirror: TMirrorConfig,
  leg: TMirrorConfig["legs"][number],
  sectors: TSectorRange | null,
): { start: number; end: number } | undefined | "outside" {
  const lastRegion =
    mirror.sizeSectors !== undefined
      ? Math.ceil(mirror.sizeSectors / mirror.regionSectors) - 1
      : null;
  // No range (a controller reset, a dead leg): every region of the mirror.
  if (sectors === null) return lastRegion === null ? undefined : { start: 0, end: lastRegion };
  const base = BigInt(leg.startSector);
  const per = BigInt(mirror.regionSectors);
  if (sectors.end < base) return "outside";
  const first = sectors.start < base ? 0n : (sectors.start - base) / per;
  let last = (sectors.end - base) / per;
  if (lastRegion !== null) {
    if (first > BigInt(lastRegion)) return "outside";
    if (last > BigInt(lastRegion)) last = BigInt(lastRegion);
  }
  return { start: Number(first), end: Number(last) };
}

/** Where one report lands: the device it names and, if any, the mirror leg it touches. */
export interface EventPlacement {
  device: string | null;
  location: MirrorLocation | null;
  /** Merged into the event's `data`. */
  data?: Record<string, unknown> | undefined;
}

/**
 * One event per mirror leg a report touches, so every affected mirror gets its own
 * "resync these regions" (the dashboard resyncs what one event names). One placement keeps
 * the event's key; several get keys derived from device, mirror and leg, which are as
 * stable as the report itself. Data integrity first: a report that touches two legs is two
 * rows, never one that names only the first.
 */
export function placeEvent(event: THostEvent, placements: EventPlacement[]): THostEvent[] {
  if (placements.length === 0) return [event];
  const unique = placements.filter(
    (p, i) =>
      placements.findIndex(
        (q) =>
          q.device === p.device &&
          q.location?.mirror === p.location?.mirror &&
          q.location?.leg === p.location?.leg,
      ) === i,
  );
  return unique.map((p, i) => {
    const device = p.device ?? event.device;
    const placed: THostEvent = {
      ...event,
      device,
      data: {
        ...event.data,
        ...p.data,
        ...(unique.length > 1 ? { placement: `${i + 1} of ${unique.length}` } : {}),
      },
    };
    if (unique.length > 1)
      placed.key = `${event.key}@${device ?? "-"}/${p.location?.mirror ?? "-"}/${p.location?.leg ?? "-"}`;
    if (p.location) {
      placed.mirror = p.location.mirror;
      placed.leg = p.location.leg;
      if (p.location.regions) placed.regions = p.location.regions;
      else delete placed.regions;
    }
    return placed;
  });
}
