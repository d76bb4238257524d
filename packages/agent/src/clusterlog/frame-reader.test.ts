import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FrameReader, type FrameSink } from "./frame-reader.ts";

function collect() {
  const events: string[] = [];
  const sink: FrameSink = {
    frame: (b) => events.push(`frame ${b.length} ${b[0]}`),
    oversized: (h, n) => events.push(`oversized ${h.length} ${n}`),
    fatal: (r) => events.push(`fatal ${r.split(" ")[0]}`),
  };
  return { events, sink };
}

function framed(length: number, fill: number, bodyLength = length): Uint8Array {
  const bytes = new Uint8Array(4 + bodyLength).fill(fill);
  new DataView(bytes.buffer).setUint32(0, length, true);
  return bytes;
}

describe("FrameReader", () => {
  it("splits pipelined frames across arbitrary chunk boundaries", () => {
    const stream = new Uint8Array([...framed(160, 1), ...framed(170, 2), ...framed(200, 3)]);
    for (const size of [1, 3, 7, 64, 1000]) {
      const { events, sink } = collect();
      const reader = new FrameReader();
      for (let i = 0; i < stream.length; i += size) reader.push(stream.subarray(i, i + size), sink);
      expect(events).toEqual(["frame 160 1", "frame 170 2", "frame 200 3"]);
      expect(reader.pendingBytes).toBe(0);
    }
  });

  it("hands out a frame inside one chunk without copying", () => {
    const chunk = framed(160, 9);
    let got: Uint8Array | null = null;
    new FrameReader().push(chunk, {
      frame: (b) => (got = b),
      oversized: () => {},
      fatal: () => {},
    });
    expect(got!.buffer).toBe(chunk.buffer);
  });

  it("reports an oversized frame's header, skips its body, and goes on", () => {
    const { events, sink } = collect();
    const reader = new FrameReader({ maxFrameSize: 300 });
    const stream = new Uint8Array([...framed(5000, 4), ...framed(160, 5)]);
    for (let i = 0; i < stream.length; i += 999) reader.push(stream.subarray(i, i + 999), sink);
    expect(events).toEqual(["oversized 160 5000", "frame 160 5"]);
  });

  it("fails for good on a length below the header or beyond the discard limit", () => {
    for (const length of [0, 159, 0xffff_ffff]) {
      const { events, sink } = collect();
      const reader = new FrameReader();
      reader.push(new Uint8Array([...framed(160, 1), ...framed(length, 2, 0)]), sink);
      reader.push(framed(160, 3), sink);
      expect(events).toEqual(["frame 160 1", "fatal frame"]);
    }
  });

  it("takes at most a budget of frames per call; the rest waits in order for resume", () => {
    const frames = Array.from({ length: 10 }, (_, i) => framed(160 + i, i));
    const stream = new Uint8Array(frames.flatMap((f) => [...f]));
    for (const size of [1, 50, 400, stream.length]) {
      for (const budget of [1, 3, 4]) {
        const { events, sink } = collect();
        const reader = new FrameReader({ maxFrameSize: 165 });
        let turns = 0;
        for (let i = 0; i < stream.length; i += size) {
          const taken = reader.push(stream.subarray(i, i + size), sink, budget);
          expect(taken).toBeLessThanOrEqual(budget);
        }
        while (reader.backlogged) {
          turns++;
          const before = events.length;
          expect(reader.resume(sink, budget)).toBe(events.length - before);
          expect(events.length - before).toBeLessThanOrEqual(budget);
          expect(events.length - before).toBeGreaterThan(0);
        }
        expect(events).toEqual(
          frames.map((_, i) =>
            160 + i > 165 ? `oversized 160 ${160 + i}` : `frame ${160 + i} ${i}`,
          ),
        );
        expect(reader.pendingBytes).toBe(0);
        if (size === stream.length) expect(turns).toBe(Math.ceil(10 / budget) - 1);
      }
    }
  });

  it("stop drops the backlog", () => {
    const { events, sink } = collect();
    const reader = new FrameReader();
    reader.push(new Uint8Array([...framed(160, 1), ...framed(160, 2)]), sink, 1);
    expect(reader.backlogged).toBe(true);
    reader.stop();
    expect(reader.backlogged).toBe(false);
    expect(reader.resume(sink, 10)).toBe(0);
    expect(events).toEqual(["frame 160 1"]);
  });

  it("copies at most the one frame a chunk boundary splits, never the chunk behind it (issue 14)", () => {
    // A frame split across chunks is put together (its bytes copied); every frame after it
    // in the same chunk is still handed out as a view of that chunk.
    const stream = new Uint8Array(
      Array.from({ length: 40 }, (_, i) => [...framed(160 + (i % 7), i)]).flat(),
    );
    for (const size of [3, 161, 500, 4096]) {
      const reader = new FrameReader();
      const chunks: Uint8Array[] = [];
      let copied = 0;
      let frames = 0;
      const sink: FrameSink = {
        frame: (b) => {
          frames++;
          if (!chunks.some((c) => c.buffer === b.buffer)) copied++;
        },
        oversized: () => {},
        fatal: () => {},
      };
      for (let i = 0; i < stream.length; i += size) {
        const chunk = stream.slice(i, i + size); // a buffer of its own, as a socket's read
        chunks.push(chunk);
        reader.push(chunk, sink);
      }
      expect(frames).toBe(40);
      expect(copied).toBeLessThanOrEqual(chunks.length - 1); // one per boundary at most
    }
  });

  it("frames any stream the same way whatever its chunks and budgets", () => {
    const item = fc.oneof(
      fc.record({ k: fc.constant("frame" as const), n: fc.integer({ min: 160, max: 300 }) }),
      fc.record({ k: fc.constant("oversized" as const), n: fc.integer({ min: 301, max: 2000 }) }),
    );
    fc.assert(
      fc.property(
        fc.array(item, { minLength: 1, maxLength: 30 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 }),
        fc.integer({ min: 1, max: 5 }),
        (items, badEnd, sizes, budget) => {
          const parts = items.map((it, i) => framed(it.n, i & 0xff));
          if (badEnd) parts.push(framed(20, 0, 0));
          const stream = new Uint8Array(parts.flatMap((p) => [...p]));
          const expected = collect();
          new FrameReader({ maxFrameSize: 300 }).push(stream, expected.sink);
          const got = collect();
          const reader = new FrameReader({ maxFrameSize: 300 });
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const size = sizes[i % sizes.length]!;
            reader.push(stream.slice(at, at + size), got.sink, budget);
            at += size;
            if (i % 2 === 0) reader.resume(got.sink, budget);
          }
          while (reader.backlogged) reader.resume(got.sink, budget);
          expect(got.events).toEqual(expected.events);
        },
      ),
    );
  });
});
