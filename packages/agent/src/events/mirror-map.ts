import { z } from "zod";
import type { TRangeUnit } from "./event.ts";

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

/** Pure lookup: device name (+ optional affected range) → mirror, leg and regions. */
export class MirrorMap {
  private readonly byDevice = new Map<
    string,
    { mirror: TMirrorConfig; leg: TMirrorConfig["legs"][number] }
  >();
  private readonly logs = new Map<string, TMirrorConfig>();

  constructor(mirrors: TMirrorConfig[] = []) {
    for (const mirror of mirrors) {
      for (const leg of mirror.legs)
        for (const name of [leg.device, ...leg.aliases]) this.byDevice.set(name, { mirror, leg });
      if (mirror.logDevice) this.logs.set(mirror.logDevice, mirror);
    }
  }

  get size(): number {
    return this.byDevice.size;
  }

  locate(
    device: string | null,
    range?: { start: bigint; end: bigint; unit: TRangeUnit },
  ): MirrorLocation | null {
    if (device === null) return null;
    const log = this.logs.get(device);
    if (log) return { mirror: log.name, leg: "log" };
    const hit = this.byDevice.get(device);
    if (!hit) return null;
    const { mirror, leg } = hit;
    const lastRegion =
      mirror.sizeSectors !== undefined
        ? Math.ceil(mirror.sizeSectors / mirror.regionSectors) - 1
        : null;
    let sectors: { start: bigint; end: bigint } | null = null;
    if (range?.unit === "sector") sectors = range;
    else if (range?.unit === "lba") {
      const per = BigInt(leg.logicalBlockSize / 512);
      sectors = { start: range.start * per, end: (range.end + 1n) * per - 1n };
    } else if (range?.unit === "byte") {
      sectors = { start: range.start / 512n, end: range.end / 512n };
    }
    if (sectors === null) {
      // No range (a controller reset, a dead leg): every region of the mirror.
      return {
        mirror: mirror.name,
        leg: leg.device,
        regions: lastRegion === null ? undefined : { start: 0, end: lastRegion },
      };
    }
    const base = BigInt(leg.startSector);
    const per = BigInt(mirror.regionSectors);
    if (sectors.end < base) return { mirror: mirror.name, leg: leg.device };
    const first = sectors.start < base ? 0n : (sectors.start - base) / per;
    let last = (sectors.end - base) / per;
    if (lastRegion !== null) {
      if (first > BigInt(lastRegion)) return { mirror: mirror.name, leg: leg.device };
      if (last > BigInt(lastRegion)) last = BigInt(lastRegion);
    }
    return {
      mirror: mirror.name,
      leg: leg.device,
      regions: { start: Number(first), end: Number(last) },
    };
  }
}
