import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeFrame, FrameSplitter } from "./frame-splitter.ts";

function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const sorted = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of [...sorted, bytes.length]) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  return chunks;
}

describe("FrameSplitter", () => {
  it("yields the same frames however the stream is chunked", () => {
    const frame = fc.uint8Array({ minLength: 160, maxLength: 600 });
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (frames, points) => {
          const stream = new Uint8Array(frames.reduce((n, f) => n + f.length + 4, 0));
          let at = 0;
          for (const f of frames) {
            stream.set(encodeFrame(f), at);
            at += f.length + 4;
          }
          const splitter = new FrameSplitter();
          const out: Uint8Array[] = [];
          for (const chunk of cut(stream, points)) {
            const r = splitter.push(chunk);
            if (!r.ok) throw new Error(r.error.message);
            out.push(...r.value);
          }
          expect(out).toEqual(frames);
          expect(splitter.pendingBytes).toBe(0);
        },
      ),
    );
  });

  it("holds back a partial frame until the rest arrives", () => {
    const s = new FrameSplitter();
    const f = encodeFrame(new Uint8Array(160).fill(7));
    expect(s.push(f.subarray(0, 3))).toEqual({ ok: true, value: [] });
    expect(s.push(f.subarray(3, 100))).toEqual({ ok: true, value: [] });
    expect(s.pendingBytes).toBe(100);
    const r = s.push(f.subarray(100));
    expect(r.ok && r.value.length).toBe(1);
  });

  it("fails for good on a length shorter than a header or above the maximum", () => {
    const short = new FrameSplitter();
    expect(short.push(new Uint8Array([10, 0, 0, 0]))).toMatchObject({
      ok: false,
      error: { code: "frame-too-short" },
    });
    expect(short.push(encodeFrame(new Uint8Array(160)))).toMatchObject({ ok: false });
    const big = new FrameSplitter({ maxFrameSize: 1000 });
    expect(big.push(new Uint8Array([0xe9, 0x03, 0, 0]))).toMatchObject({
      error: { code: "frame-too-large" },
    });
  });

  it("supports a big-endian length prefix", () => {
    const s = new FrameSplitter({ littleEndian: false });
    const r = s.push(encodeFrame(new Uint8Array(200), false));
    expect(r.ok && r.value[0]?.length).toBe(200);
  });
});
