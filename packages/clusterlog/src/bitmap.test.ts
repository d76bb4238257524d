import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Bitmap, type BitmapCopy, popcount32 } from "./bitmap.ts";

/** Random set / clear / range changes of a `size`-bit bitmap (fast-check arbitraries). */
function bitChanges(size: number) {
  return [
    fc.record({ k: fc.constant("set" as const), i: fc.nat(size - 1) }),
    fc.record({ k: fc.constant("clear" as const), i: fc.nat(size - 1) }),
    fc.record({
      k: fc.constant("range" as const),
      i: fc.nat(size),
      j: fc.nat(size),
      v: fc.boolean(),
    }),
  ] as const;
}

describe("popcount32", () => {
  it("counts bits of edge words", () => {
    expect(popcount32(0)).toBe(0);
    expect(popcount32(0xffff_ffff)).toBe(32);
    expect(popcount32(0x8000_0001)).toBe(2);
    expect(popcount32(0x5555_5555)).toBe(16);
  });
});

describe("Bitmap", () => {
  it("set/clear/test report changes and keep the count", () => {
    const b = new Bitmap(100);
    expect(b.set(31)).toBe(true);
    expect(b.set(31)).toBe(false);
    expect(b.set(32)).toBe(true);
    expect(b.test(31) && b.test(32) && !b.test(33)).toBe(true);
    expect(b.count).toBe(2);
    expect(b.clear(31)).toBe(true);
    expect(b.clear(31)).toBe(false);
    expect(b.count).toBe(1);
  });

  it("fillRange works across word boundaries and counts exactly [0, size) (P31)", () => {
    const b = new Bitmap(70);
    b.fill(true);
    expect(b.count).toBe(70);
    // Padding bits above size stay zero: the last word has only 70 - 64 = 6 bits.
    expect(b.words[2]).toBe(0b111111);
    b.fillRange(3, 67, false);
    expect(b.count).toBe(6);
    expect(b.findNextZero(0)).toBe(3);
    expect(b.findNextSet(3)).toBe(67);
  });

  it("findNextZero returns size when full, even with padding bits present", () => {
    const b = new Bitmap(33);
    b.fill(true);
    expect(b.findNextZero(0)).toBe(33);
    expect(b.findNextZero(40)).toBe(33);
    expect(b.findNextSet(33)).toBe(33);
  });

  it("serialises LSB-first per byte and drops bits above size on load", () => {
    const b = new Bitmap(12);
    b.set(0);
    b.set(9);
    expect([...b.toBytes()]).toEqual([0x01, 0x02]);
    const loaded = Bitmap.fromBytes(12, new Uint8Array([0xff, 0xff]));
    expect(loaded.count).toBe(12);
    expect(loaded.words[0]).toBe(0xfff);
  });

  it("a cursor sweep over N regions reads at most one word per call plus N/32 (PB3)", () => {
    const n = 32 * 1000;
    // Every fourth word already in sync: those must be skipped, not re-read per call.
    const b = new Bitmap(n);
    for (let w = 0; w < n / 32; w += 4) b.fillRange(w * 32, w * 32 + 32, true);
    let cursor = 0;
    let calls = 0;
    for (;;) {
      calls++;
      const r = b.findNextZero(cursor);
      if (r >= n) break;
      b.set(r);
      cursor = r + 1;
    }
    expect(b.count).toBe(n);
    expect(b.wordsVisited).toBeLessThanOrEqual(calls + n / 32);
    const full = new Bitmap(n);
    full.fill(true);
    full.wordsVisited = 0;
    expect(full.findNextZero(0)).toBe(n);
    expect(full.wordsVisited).toBe(n / 32);
  });

  it("behaves like a Set model under random operations", () => {
    const size = 200;
    const op = fc.oneof(...bitChanges(size), fc.record({ k: fc.constant("copy" as const) }));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.nat(size), (ops, from) => {
        let b = new Bitmap(size);
        const model = new Set<number>();
        for (const o of ops) {
          if (o.k === "set") {
            expect(b.set(o.i)).toBe(!model.has(o.i));
            model.add(o.i);
          } else if (o.k === "clear") expect(b.clear(o.i)).toBe(model.delete(o.i));
          else if (o.k === "range") {
            const [lo, hi] = o.i <= o.j ? [o.i, o.j] : [o.j, o.i];
            b.fillRange(lo, hi, o.v);
            for (let i = lo; i < hi; i++) {
              if (o.v) model.add(i);
              else model.delete(i);
            }
          } else b = Bitmap.fromBytes(size, b.clone().toBytes());
        }
        expect(b.count).toBe(model.size);
        let nextSet = size;
        let nextZero = size;
        for (let i = size - 1; i >= from; i--) {
          if (model.has(i)) nextSet = i;
          else nextZero = i;
        }
        expect(b.findNextSet(from)).toBe(nextSet);
        expect(b.findNextZero(from)).toBe(nextZero);
        for (let i = 0; i < size; i++) expect(b.test(i)).toBe(model.has(i));
      }),
    );
  });

  it("a copy started now gets the bytes of now, whatever changes before it is made (issue 15)", () => {
    const size = 333; // 42 bytes: pieces of 4 and 8 bytes, a partial last word
    const change = fc.oneof(
      ...bitChanges(size),
      fc.record({ k: fc.constant("load" as const), seed: fc.nat() }),
      fc.record({ k: fc.constant("step" as const), n: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ k: fc.constant("start" as const), piece: fc.constantFrom(4, 8, 64) }),
    );
    fc.assert(
      fc.property(fc.array(change, { maxLength: 80 }), (changes) => {
        const b = new Bitmap(size);
        const target = new Uint8Array(200);
        const copies: { copy: BitmapCopy; at: number; expected: Uint8Array }[] = [];
        let at = 0;
        for (const c of changes) {
          if (c.k === "set") b.set(c.i);
          else if (c.k === "clear") b.clear(c.i);
          else if (c.k === "range") b.fillRange(Math.min(c.i, c.j), Math.max(c.i, c.j), c.v);
          else if (c.k === "load") {
            const bytes = new Uint8Array(42).map((_, i) => (c.seed * (i + 7)) & 0xff);
            b.readBytes(bytes, 0);
          } else if (c.k === "step") copies.at(-1)?.copy.step(c.n);
          else if (at + 42 <= target.length) {
            copies.push({ copy: b.copyLater(target, at, c.piece), at, expected: b.toBytes() });
            at += 42;
          }
        }
        for (const { copy, at, expected } of copies) {
          copy.finish();
          expect(copy.done).toBe(true);
          expect(target.subarray(at, at + 42)).toEqual(expected);
        }
      }),
    );
  });

  it("an abandoned copy stops watching the bitmap", () => {
    const b = new Bitmap(1000);
    const target = new Uint8Array(125).fill(0xff);
    const copy = b.copyLater(target, 0, 4);
    b.set(0); // copy-on-write: the piece holding region 0 is copied first
    expect(target[0]).toBe(0);
    copy.abandon();
    b.set(999);
    expect(target[124]).toBe(0xff); // not copied on write any more
  });
});
