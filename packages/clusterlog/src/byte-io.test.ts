import { describe, expect, it } from "vitest";
import { ByteReader, ByteReaderError, ByteWriter } from "./byte-io.ts";

describe("ByteWriter / ByteReader", () => {
  it("round-trips values across buffer growth", () => {
    const w = new ByteWriter();
    for (let i = 0; i < 2000; i++)
      w.u8(i & 0xff)
        .u32(i)
        .s32(-i - 1)
        .u64(BigInt(i) << 20n)
        .bool(i % 2 === 0);
    w.string("LVM-\u00e9").bytes(new Uint8Array(5000).fill(9));
    const r = new ByteReader(w.finish());
    for (let i = 0; i < 2000; i++) {
      expect([r.u8(), r.u32(), r.s32(), r.u64Big(), r.bool()]).toEqual([
        i & 0xff,
        i,
        -i - 1,
        BigInt(i) << 20n,
        i % 2 === 0,
      ]);
    }
    expect(r.string()).toBe("LVM-\u00e9");
    expect(r.bytes().length).toBe(5000);
    expect(r.done).toBe(true);
  });

  it("reports truncation instead of reading garbage", () => {
    const r = new ByteReader(new Uint8Array(3));
    expect(() => r.u32()).toThrow(ByteReaderError);
  });
});
