// Region bitmaps (clean_bits, sync_bits) on a Uint32Array. Bit n lives in word n/32 at bit
// n%32, which is also the little-endian byte layout of the on-disk bitmap (spec §5) — but
// unlike libdm's dm_bitset_t there is no leading count word (pitfall P20).
//
// Invariants that keep every request O(1) or amortised O(1) (PERF.md PB3):
// * padding bits at and above `size` are always 0, so `count` covers exactly [0, size)
//   (pitfall P31) and scans never need a final mask;
// * `count` (popcount) is maintained on every change, so GET_SYNC_COUNT never scans.

export function popcount32(x: number): number {
  let v = x - ((x >>> 1) & 0x5555_5555);
  v = (v & 0x3333_3333) + ((v >>> 2) & 0x3333_3333);
  v = (v + (v >>> 4)) & 0x0f0f_0f0f;
  return Math.imul(v, 0x0101_0101) >>> 24;
}

function lowestSetBit(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** Whether this host stores a Uint32Array little-endian (every host we run on does). */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
/**
 * A pending copy is taken this many bytes at a time: a write into a piece not yet copied
 * copies that piece first (64 KiB: about 10 µs of memcpy, 524,288 regions).
 */
export const COPY_PIECE_BYTES = 64 * 1024;

/**
 * The bytes a bitmap had when the copy was started (`Bitmap.copyLater`), written into
 * `target` piece by piece later: `step` copies the next pieces, and a change to the bitmap
 * first copies the pieces it touches (copy-on-write). So a snapshot of a 2^24-region log
 * needs no 4 MiB copy in one event-loop turn (issue 15), and its bytes are those of the
 * moment it was started, whatever changes after.
 */
export class BitmapCopy {
  readonly #bitmap: Bitmap;
  readonly #target: Uint8Array;
  readonly #offset: number;
  readonly #byteCount: number;
  readonly #pieceBytes: number;
  /** 1 per piece already copied. */
  readonly #copied: Uint8Array;
  /** Pieces below this one are all copied. */
  #next = 0;
  #left: number;

  constructor(bitmap: Bitmap, target: Uint8Array, offset: number, pieceBytes: number) {
    if (!Number.isInteger(pieceBytes) || pieceBytes < 4 || pieceBytes % 4 !== 0) {
      throw new RangeError(`bad piece size ${pieceBytes}`);
    }
    this.#bitmap = bitmap;
    this.#target = target;
    this.#offset = offset;
    this.#byteCount = Math.ceil(bitmap.size / 8);
    this.#pieceBytes = pieceBytes;
    this.#left = Math.ceil(this.#byteCount / pieceBytes);
    this.#copied = new Uint8Array(this.#left);
  }

  get done(): boolean {
    return this.#left === 0;
  }

  /** Copy pieces in order until about `maxBytes` are copied (at least one); returns bytes copied. */
  step(maxBytes: number): number {
    let copied = 0;
    while (this.#left > 0 && (copied === 0 || copied < maxBytes)) {
      while (this.#copied[this.#next] === 1) this.#next++;
      copied += this.#copyPiece(this.#next);
    }
    if (this.#left === 0) this.#bitmap.detachCopy(this);
    return copied;
  }

  /** Copy everything not yet copied. */
  finish(): void {
    while (this.#left > 0) this.step(Number.POSITIVE_INFINITY);
  }

  /** Stop copying: the target's bytes are left incomplete. */
  abandon(): void {
    this.#left = 0;
    this.#bitmap.detachCopy(this);
  }

  /** Words `[first, last]` are about to change: copy their pieces first. */
  beforeWrite(firstWord: number, lastWord: number): void {
    const per = this.#pieceBytes >>> 2;
    const last = Math.min(Math.floor(lastWord / per), this.#copied.length - 1);
    for (let p = Math.floor(firstWord / per); p <= last; p++) {
      if (this.#copied[p] === 0) this.#copyPiece(p);
    }
    if (this.#left === 0) this.#bitmap.detachCopy(this);
  }

  #copyPiece(p: number): number {
    const from = p * this.#pieceBytes;
    const to = Math.min(this.#byteCount, from + this.#pieceBytes);
    this.#bitmap.writeByteRange(this.#target, this.#offset, from, to);
    this.#copied[p] = 1;
    this.#left--;
    return to - from;
  }
}

export class Bitmap {
  readonly size: number;
  readonly words: Uint32Array;
  #count = 0;
  /** Copies still waiting for bytes of this bitmap as it was (`copyLater`); null: none. */
  #copies: BitmapCopy[] | null = null;
  /** Words read by the find-next scans; instrumentation for the PB3 benchmark only. */
  wordsVisited = 0;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad bitmap size ${size}`);
    this.size = size;
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  /** Number of set bits in [0, size). */
  get count(): number {
    return this.#count;
  }

  test(bit: number): boolean {
    return ((this.words[bit >>> 5]! >>> (bit & 31)) & 1) === 1;
  }

  /** Set `bit`; returns whether it changed. */
  set(bit: number): boolean {
    const w = bit >>> 5;
    const mask = 1 << (bit & 31);
    const word = this.words[w]!;
    if (word & mask) return false;
    if (this.#copies !== null) this.#beforeWrite(w, w);
    this.words[w] = word | mask;
    this.#count++;
    return true;
  }

  /** Clear `bit`; returns whether it changed. */
  clear(bit: number): boolean {
    const w = bit >>> 5;
    const mask = 1 << (bit & 31);
    const word = this.words[w]!;
    if (!(word & mask)) return false;
    if (this.#copies !== null) this.#beforeWrite(w, w);
    this.words[w] = word & ~mask;
    this.#count--;
    return true;
  }

  assign(bit: number, value: boolean): boolean {
    return value ? this.set(bit) : this.clear(bit);
  }

  /** Set or clear every bit in [from, to), word at a time. */
  fillRange(from: number, to: number, value: boolean): void {
    const end = Math.min(to, this.size);
    if (from >= end) return;
    const firstWord = from >>> 5;
    const lastWord = (end - 1) >>> 5;
    if (this.#copies !== null) this.#beforeWrite(firstWord, lastWord);
    for (let w = firstWord; w <= lastWord; w++) {
      const lo = w === firstWord ? from & 31 : 0;
      const hi = w === lastWord ? ((end - 1) & 31) + 1 : 32;
      const mask = hi - lo === 32 ? 0xffff_ffff : (((1 << (hi - lo)) - 1) << lo) >>> 0;
      const old = this.words[w]!;
      const next = value ? (old | mask) >>> 0 : (old & ~mask) >>> 0;
      this.#count += popcount32(next) - popcount32(old);
      this.words[w] = next;
    }
  }

  fill(value: boolean): void {
    this.fillRange(0, this.size, value);
  }

  /** First set bit at index ≥ from, or `size` if there is none. */
  findNextSet(from: number): number {
    return this.#findNext(from, 0);
  }

  /** First clear bit at index ≥ from, or `size` if there is none. */
  findNextZero(from: number): number {
    return this.#findNext(from, 0xffff_ffff);
  }

  #findNext(from: number, invert: number): number {
    if (from >= this.size) return this.size;
    const start = Math.max(0, from);
    let w = start >>> 5;
    const n = this.words.length;
    this.wordsVisited++;
    let word = ((this.words[w]! ^ invert) & (0xffff_ffff << (start & 31))) >>> 0;
    while (word === 0) {
      w++;
      if (w >= n) return this.size;
      this.wordsVisited++;
      word = (this.words[w]! ^ invert) >>> 0;
    }
    // Padding bits are 0, so a zero-search may land past `size`: clamp.
    return Math.min(w * 32 + lowestSetBit(word), this.size);
  }

  /** Make this bitmap a copy of `other` (same size). */
  copyFrom(other: Bitmap): void {
    if (other.size !== this.size) throw new RangeError("bitmap sizes differ");
    if (this.#copies !== null) this.#beforeWrite(0, this.words.length - 1);
    this.words.set(other.words);
    this.#count = other.#count;
  }

  clone(): Bitmap {
    const copy = new Bitmap(this.size);
    copy.copyFrom(this);
    return copy;
  }

  /** Bytes of the bitmap, LSB-first within each byte (spec §5 layout): ceil(size/8) bytes. */
  toBytes(): Uint8Array {
    const bytes = new Uint8Array(Math.ceil(this.size / 8));
    this.writeBytes(bytes, 0);
    return bytes;
  }

  /** Write ceil(size/8) bytes into `target` at `offset`. */
  writeBytes(target: Uint8Array, offset: number): void {
    this.writeByteRange(target, offset, 0, Math.ceil(this.size / 8));
  }

  /** Bytes `[from, to)` of the `writeBytes` layout into `target` at `offset + from`. */
  writeByteRange(target: Uint8Array, offset: number, from: number, to: number): void {
    if (LITTLE_ENDIAN) {
      // The words' own bytes are the little-endian layout: one memcpy (issue 15: the
      // byte loop took 20-160 ms per 2^24-region snapshot on a loaded machine). Same bytes.
      target.set(
        new Uint8Array(this.words.buffer, this.words.byteOffset + from, to - from),
        offset + from,
      );
      return;
    }
    for (let b = from; b < to; b++) {
      target[offset + b] = (this.words[b >>> 2]! >>> ((b & 3) * 8)) & 0xff;
    }
  }

  /**
   * Start a copy of this bitmap's bytes as they are now (the `writeBytes` layout) into
   * `target` at `offset`, made later by the returned copy's `step`/`finish`; until then a
   * change here first copies the pieces it touches.
   */
  copyLater(target: Uint8Array, offset: number, pieceBytes = COPY_PIECE_BYTES): BitmapCopy {
    const copy = new BitmapCopy(this, target, offset, pieceBytes);
    if (copy.done) return copy;
    if (this.#copies === null) this.#copies = [copy];
    else this.#copies.push(copy);
    return copy;
  }

  /** For `BitmapCopy`: it needs nothing more of this bitmap. */
  detachCopy(copy: BitmapCopy): void {
    if (this.#copies === null) return;
    const at = this.#copies.indexOf(copy);
    if (at >= 0) this.#copies.splice(at, 1);
    if (this.#copies.length === 0) this.#copies = null;
  }

  #beforeWrite(firstWord: number, lastWord: number): void {
    // A copy may detach itself (and empty the list) while it is called: walk a copy.
    for (const copy of [...this.#copies!]) copy.beforeWrite(firstWord, lastWord);
  }

  /**
   * Load ceil(size/8) bytes from `source` at `offset` (missing bytes read as 0). Bits at and
   * above `size` in the source are dropped, which is the "clear padding bits" step of a
   * resume (spec §2.5); the count is recomputed once here, never per request.
   */
  readBytes(source: Uint8Array, offset: number): void {
    const byteCount = Math.ceil(this.size / 8);
    if (this.#copies !== null) this.#beforeWrite(0, this.words.length - 1);
    this.words.fill(0);
    if (LITTLE_ENDIAN) {
      const available = Math.max(0, Math.min(byteCount, source.length - offset));
      new Uint8Array(this.words.buffer, this.words.byteOffset, byteCount).set(
        source.subarray(offset, offset + available),
      );
      this.#clearPadding();
      this.#recount();
      return;
    }
    for (let b = 0; b < byteCount; b++) {
      const value = source[offset + b] ?? 0;
      if (value) this.words[b >>> 2]! |= value << ((b & 3) * 8);
    }
    this.#clearPadding();
    this.#recount();
  }

  static fromBytes(size: number, bytes: Uint8Array): Bitmap {
    const bitmap = new Bitmap(size);
    bitmap.readBytes(bytes, 0);
    return bitmap;
  }

  #clearPadding(): void {
    const tail = this.size & 31;
    if (tail !== 0) {
      const last = this.words.length - 1;
      this.words[last] = (this.words[last]! & ((1 << tail) - 1)) >>> 0;
    }
  }

  #recount(): void {
    let count = 0;
    for (let w = 0; w < this.words.length; w++) count += popcount32(this.words[w]!);
    this.#count = count;
  }
}
