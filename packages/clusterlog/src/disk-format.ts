import { Bitmap } from "./bitmap.ts";
import type { LogConfig } from "./ctr-args.ts";

// On-disk log, identical to the kernel "disk" log and cmirrord on little-endian hosts
// (spec §5): header at byte 0, clean bitmap at byte 1024 with no count word (P20).

export const MIRROR_MAGIC = 0x4d69_5272; // "MiRr"
export const MIRROR_DISK_VERSION = 2;
export const LOG_OFFSET = 1024;
const SECTOR = 512;

/** Header plus bitmap (bitmap padded to whole u32 like the kernel), rounded up to a sector. */
export function logImageSize(regionCount: number): number {
  const bitmapBytes = Math.ceil(regionCount / 32) * 4;
  return Math.ceil((LOG_OFFSET + bitmapBytes) / SECTOR) * SECTOR;
}

export function encodeLogImage(cleanBits: Bitmap): Uint8Array {
  const image = new Uint8Array(logImageSize(cleanBits.size));
  const view = new DataView(image.buffer);
  view.setUint32(0, MIRROR_MAGIC, true);
  view.setUint32(4, MIRROR_DISK_VERSION, true);
  view.setBigUint64(8, BigInt(cleanBits.size), true);
  cleanBits.writeBytes(image, LOG_OFFSET);
  return image;
}

export interface DiskHeader {
  readonly magic: number;
  readonly version: number;
  readonly nrRegions: number;
}

export function decodeLogHeader(image: Uint8Array): DiskHeader | null {
  if (image.length < 16) return null;
  const view = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const nr = view.getBigUint64(8, true);
  return {
    magic: view.getUint32(0, true),
    version: view.getUint32(4, true),
    nrRegions: nr > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(nr),
  };
}

/**
 * clean_bits for a master resume (spec §2.5, §5). `image` is what the read returned, or
 * null when there is nothing to trust (read failed, device already failed).
 *
 * * valid magic → disk bits kept for regions below the disk's nr_regions (cmirrord checks
 *   the magic only, not the version);
 * * regions [disk nr_regions, rc) → clean if nosync, else dirty (grown device / fresh log);
 * * [REC] spec §2.5 and pitfall P32: with `sync` or `nosync` the disk bits are ignored,
 *   as the kernel's own disk log does ("new log required").
 */
export function initialCleanBits(config: LogConfig, image: Uint8Array | null): Bitmap {
  const cleanBits = new Bitmap(config.regionCount);
  let diskRegions = 0;
  const header = image && config.sync === "default" ? decodeLogHeader(image) : null;
  if (image && header && header.magic === MIRROR_MAGIC) {
    diskRegions = Math.min(header.nrRegions, config.regionCount);
    cleanBits.readBytes(image, LOG_OFFSET);
  }
  cleanBits.fillRange(diskRegions, config.regionCount, config.sync === "nosync");
  return cleanBits;
}
