import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DM_ULOG_HEADER_SIZE,
  type DmUlogRequest,
  decodePair64,
  decodeRegionList,
  decodeRequest,
  decodeSetRegionSync,
  encodePair64,
  encodeReply,
  encodeRequest,
  encodeSetRegionSync,
  encodeU64List,
} from "./codec.ts";
import { DM_ULOG_MARK_REGION } from "./request-types.ts";

const mark42: DmUlogRequest = {
  luid: 0xffff_8880_1234_5678n,
  uuid: "LVM-test",
  version: 3,
  error: 0,
  seq: 42,
  requestType: DM_ULOG_MARK_REGION,
  data: encodeU64List([5, 9]),
};

function encoded(req: DmUlogRequest): Uint8Array {
  const r = encodeRequest(req);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

describe("dm_ulog_request codec", () => {
  it("decodes the same with `view` and `previous` (the server's fast path) as without", () => {
    const uuidArb = fc
      .array(fc.integer({ min: 0, max: 255 }), { maxLength: 130 })
      .map((cs) => String.fromCharCode(...cs));
    fc.assert(
      fc.property(
        uuidArb,
        uuidArb,
        fc.boolean(),
        fc.uint8Array({ maxLength: 64 }),
        (other, uuid, same, data) => {
          // Often the previous request's uuid is this one's (as the server sees it).
          const prev = same ? uuid.split("\0")[0]!.slice(0, 128) : other;
          // Raw bytes: the uuid field may hold a NUL anywhere, or none (uuid-unterminated).
          const bytes = new Uint8Array(DM_ULOG_HEADER_SIZE + data.length);
          for (let i = 0; i < Math.min(uuid.length, 129); i++) bytes[8 + i] = uuid.charCodeAt(i);
          new DataView(bytes.buffer).setUint32(156, data.length, true);
          bytes.set(data, DM_ULOG_HEADER_SIZE);
          const plain = decodeRequest(bytes);
          const fast = decodeRequest(bytes, { view: true, previous: { uuid: prev } });
          expect(fast).toEqual(plain);
          if (fast.ok) {
            expect(fast.value.data.buffer).toBe(bytes.buffer); // a view, not a copy
            if (plain.ok) expect(plain.value.data.buffer).not.toBe(bytes.buffer);
          }
        },
      ),
      { numRuns: 500 },
    );
    const bytes = encoded(mark42);
    const first = decodeRequest(bytes);
    const again = decodeRequest(bytes, { previous: first.ok ? first.value : null });
    expect(again.ok && first.ok && again.value.uuid).toBe(first.ok && first.value.uuid);
  });

  it("scenario 1: header codec puts every field at its uapi offset", () => {
    const bytes = encoded(mark42);
    expect(bytes.length).toBe(176);
    expect([...bytes.subarray(0, 8)]).toEqual([0x78, 0x56, 0x34, 0x12, 0x80, 0x88, 0xff, 0xff]);
    expect(String.fromCharCode(...bytes.subarray(8, 16))).toBe("LVM-test");
    expect(bytes[16]).toBe(0);
    expect([...bytes.subarray(140, 144)]).toEqual([3, 0, 0, 0]);
    expect([...bytes.subarray(148, 152)]).toEqual([0x2a, 0, 0, 0]);
    expect([...bytes.subarray(152, 156)]).toEqual([0x0a, 0, 0, 0]);
    expect([...bytes.subarray(156, 160)]).toEqual([0x10, 0, 0, 0]);
    expect([...bytes.subarray(160, 168)]).toEqual([5, 0, 0, 0, 0, 0, 0, 0]);
    const decoded = decodeRequest(bytes);
    expect(decoded.ok && decodeRegionList(decoded.value.data)).toEqual([5, 9]);
  });

  it("round-trips any valid request", () => {
    const request = fc.record({
      luid: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      uuid: fc
        .array(fc.integer({ min: 1, max: 255 }), { maxLength: 128 })
        .map((cs) => String.fromCharCode(...cs)),
      version: fc.nat({ max: 0xffff_ffff }),
      error: fc.integer({ min: -0x8000_0000, max: 0x7fff_ffff }),
      seq: fc.nat({ max: 0xffff_ffff }),
      requestType: fc.nat({ max: 0xffff_ffff }),
      data: fc.uint8Array({ maxLength: 400 }),
    });
    fc.assert(
      fc.property(request, (req) => {
        const bytes = encoded(req);
        const back = decodeRequest(bytes);
        expect(back).toEqual({ ok: true, value: req });
      }),
    );
  });

  it("never throws on arbitrary bytes, and reports a typed error", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        const r = decodeRequest(bytes);
        if (!r.ok) expect(typeof r.error.code).toBe("string");
        else expect(r.value.data.length + DM_ULOG_HEADER_SIZE).toBe(bytes.length);
      }),
    );
  });

  it("rejects short headers, lying data_size and unterminated uuids", () => {
    expect(decodeRequest(new Uint8Array(100))).toMatchObject({
      ok: false,
      error: { code: "short-message" },
    });
    const bytes = encoded(mark42);
    const tooBig = bytes.slice();
    tooBig[156] = 0x20;
    expect(decodeRequest(tooBig)).toMatchObject({ error: { code: "data-size-mismatch" } });
    expect(decodeRequest(bytes.subarray(0, 170))).toMatchObject({
      error: { code: "data-size-mismatch" },
    });
    const padded = new Uint8Array(180);
    padded.set(bytes);
    expect(decodeRequest(padded).ok).toBe(false);
    expect(decodeRequest(padded, { allowTrailing: true }).ok).toBe(true);
    const noNul = bytes.slice();
    noNul.fill(0x41, 8, 137);
    expect(decodeRequest(noNul)).toMatchObject({ error: { code: "uuid-unterminated" } });
  });

  it("refuses to encode what the wire cannot carry", () => {
    expect(encodeRequest({ ...mark42, uuid: "x".repeat(129) })).toMatchObject({
      error: { code: "uuid-invalid" },
    });
    expect(encodeRequest({ ...mark42, luid: -1n })).toMatchObject({
      error: { code: "field-out-of-range" },
    });
    expect(encodeRequest({ ...mark42, seq: 2 ** 32 })).toMatchObject({
      error: { code: "field-out-of-range" },
    });
  });

  it("replies copy the header and force data_size 0 on error (spec §2)", () => {
    const ok = decodeRequest(encodeReply(mark42, 0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])));
    expect(ok).toMatchObject({ ok: true, value: { seq: 42, error: 0, luid: mark42.luid } });
    expect(ok.ok && ok.value.data.length).toBe(8);
    const bad = decodeRequest(encodeReply(mark42, -22, new Uint8Array(8)));
    expect(bad).toMatchObject({ ok: true, value: { error: -22 } });
    expect(bad.ok && bad.value.data.length).toBe(0);
  });

  it("payload helpers: u64 above 2^53 decodes to +Infinity so bounds checks reject it", () => {
    expect(decodeRegionList(encodeU64List([(1n << 63n) + 5n]))).toEqual([Number.POSITIVE_INFINITY]);
    expect(decodeSetRegionSync(encodeSetRegionSync(7, true))).toEqual({ region: 7, inSync: true });
    expect(decodeSetRegionSync(encodeSetRegionSync(7, false))).toEqual({
      region: 7,
      inSync: false,
    });
    expect(decodePair64(encodePair64(1, 2047))).toEqual({ first: 1, second: 2047 });
  });
});
