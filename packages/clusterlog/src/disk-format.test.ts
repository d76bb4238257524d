import { describe, expect, it } from "vitest";
import { Bitmap } from "./bitmap.ts";
import { performLogIo } from "./block-device.ts";
import { encodeAscii } from "./codec.ts";
import { type LogConfig, parseCtr } from "./ctr-args.ts";
import {
  decodeLogHeader,
  encodeLogImage,
  initialCleanBits,
  LOG_OFFSET,
  logImageSize,
} from "./disk-format.ts";
import { MemoryBlockDevice } from "./memory-block-device.ts";

function config(args: string): LogConfig {
  const r = parseCtr(encodeAscii(args));
  if (!r.ok) throw new Error(r.message);
  return r.value.config;
}

function image(nrRegions: number, fill: number, bits = 2048): Uint8Array {
  const img = new Uint8Array(logImageSize(bits));
  const view = new DataView(img.buffer);
  view.setUint32(0, 0x4d69_5272, true);
  view.setUint32(4, 2, true);
  view.setBigUint64(8, BigInt(nrRegions), true);
  img.fill(fill, LOG_OFFSET);
  return img;
}

describe("on-disk log (spec §5)", () => {
  it("scenario 15 (format): header bytes, bitmap at 1024", () => {
    const bits = new Bitmap(2048);
    bits.set(3);
    const img = encodeLogImage(bits);
    expect([...img.subarray(0, 16)]).toEqual([
      0x72, 0x52, 0x69, 0x4d, 0x02, 0, 0, 0, 0x00, 0x08, 0, 0, 0, 0, 0, 0,
    ]);
    expect(img[1024]).toBe(0b1000);
    expect(img.length % 512).toBe(0);
    expect(decodeLogHeader(img)).toEqual({ magic: 0x4d69_5272, version: 2, nrRegions: 2048 });
  });

  it("fresh (zeroed) device: everything out of sync by default, in sync with nosync", () => {
    const zero = new Uint8Array(logImageSize(2048));
    expect(initialCleanBits(config("2097152 clustered-disk 7:0 1024"), zero).count).toBe(0);
    expect(initialCleanBits(config("2097152 clustered-disk 7:0 1024 nosync"), zero).count).toBe(
      2048,
    );
  });

  it("keeps valid disk bits, grown regions follow nosync/default", () => {
    const img = image(2048, 0xff);
    img[1024 + 2] = 0xff & ~(1 << 1); // bit 17
    const kept = initialCleanBits(config("2097152 clustered-disk 7:0 1024"), img);
    expect(kept.count).toBe(2047);
    expect(kept.test(17)).toBe(false);
    const grown = image(1024, 0xff);
    expect(initialCleanBits(config("2097152 clustered-disk 7:0 1024"), grown).count).toBe(1024);
  });

  it("[REC] P32: sync and nosync ignore the disk bits", () => {
    const img = image(2048, 0xff);
    expect(initialCleanBits(config("2097152 clustered-disk 7:0 1024 sync"), img).count).toBe(0);
    const half = image(2048, 0x00);
    expect(initialCleanBits(config("2097152 clustered-disk 7:0 1024 nosync"), half).count).toBe(
      2048,
    );
  });

  it("drops garbage bits above nr_regions and on a bad magic treats the log as new", () => {
    const img = image(1000, 0xff);
    expect(initialCleanBits(config("2097152 clustered-disk 7:0 1024"), img).count).toBe(1000);
    img[0] = 0;
    expect(initialCleanBits(config("2097152 clustered-disk 7:0 1024"), img).count).toBe(0);
  });

  it("performLogIo writes then fdatasyncs (P33) and reports failures as io-done errors", () => {
    const dev = new MemoryBlockDevice(8192);
    const write = performLogIo(
      { kind: "write", ioId: 4, node: 1, uuid: "u", logDevice: "7:0", image: image(8, 1, 8) },
      dev,
    );
    expect(write).toEqual({ kind: "io-done", ioId: 4, error: 0 });
    expect([dev.writeCount, dev.flushCount]).toEqual([1, 1]);
    const read = performLogIo(
      { kind: "read", ioId: 5, node: 1, uuid: "u", logDevice: "7:0", length: 1536 },
      dev,
    );
    expect(read).toMatchObject({ ioId: 5, error: 0 });
    dev.failWrites = true;
    expect(
      performLogIo(
        { kind: "write", ioId: 6, node: 1, uuid: "u", logDevice: "7:0", image: new Uint8Array(1) },
        dev,
      ),
    ).toEqual({ kind: "io-done", ioId: 6, error: -5 });
    expect(
      performLogIo({ kind: "read", ioId: 7, node: 1, uuid: "u", logDevice: "x", length: 1 }, null),
    ).toEqual({ kind: "io-done", ioId: 7, error: -5 });
  });
});
