// Minimal fixed little-endian writer/reader for snapshots (pitfall P19: one byte order
// between nodes, bitmaps included).

export class ByteWriter {
  #bytes: Uint8Array;
  #view: DataView;
  #length = 0;
  /** `gap`s: where each one is in the written bytes, and its size. */
  readonly #gaps: { at: number; size: number }[] = [];

  /** `capacity`: the expected size, so a large snapshot is not grown (and copied) 12 times. */
  constructor(capacity = 1024) {
    this.#bytes = new Uint8Array(Math.max(64, capacity));
    this.#view = new DataView(this.#bytes.buffer);
  }

  #reserve(n: number): number {
    const at = this.#length;
    if (at + n > this.#bytes.length) {
      let capacity = this.#bytes.length * 2;
      while (capacity < at + n) capacity *= 2;
      const next = new Uint8Array(capacity);
      next.set(this.#bytes.subarray(0, at));
      this.#bytes = next;
      this.#view = new DataView(next.buffer);
    }
    this.#length = at + n;
    return at;
  }

  u8(v: number): this {
    const at = this.#reserve(1); // grow first: #view may be replaced
    this.#view.setUint8(at, v);
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  u32(v: number): this {
    const at = this.#reserve(4);
    this.#view.setUint32(at, v, true);
    return this;
  }

  s32(v: number): this {
    const at = this.#reserve(4);
    this.#view.setInt32(at, v, true);
    return this;
  }

  /** A non-negative safe integer as a u64. */
  u64(v: number | bigint): this {
    const at = this.#reserve(8);
    if (typeof v === "number" && v >= 0 && v <= 0xffff_ffff && Number.isInteger(v)) {
      // Same bytes without a BigInt (a snapshot of 1,024 logs writes thousands of these).
      this.#view.setUint32(at, v, true);
      this.#view.setUint32(at + 4, 0, true);
    } else this.#view.setBigUint64(at, BigInt(v), true);
    return this;
  }

  bytes(v: Uint8Array): this {
    this.u32(v.length);
    const at = this.#reserve(v.length);
    this.#bytes.set(v, at);
    return this;
  }

  /**
   * A bitmap's ceil(size/8) bytes, length-prefixed like `bytes`, written in place (no
   * intermediate copy: a 2^24-region log's bitmaps are 2 MiB each, issue 15).
   */
  bitmap(v: { readonly size: number; writeBytes(target: Uint8Array, offset: number): void }): this {
    const n = Math.ceil(v.size / 8);
    this.u32(n);
    const at = this.#reserve(n);
    v.writeBytes(this.#bytes, at);
    return this;
  }

  /** Latin-1 string (UUIDs, CTR arguments): length-prefixed, one byte per character. */
  string(v: string): this {
    this.u32(v.length);
    const at = this.#reserve(v.length);
    for (let i = 0; i < v.length; i++) this.#bytes[at + i] = v.charCodeAt(i) & 0xff;
    return this;
  }

  /**
   * `size` bytes that belong here but are written later, outside this writer (a snapshot's
   * bitmaps, issue 15): no room is kept for them (`layout`).
   */
  gap(size: number): this {
    this.#gaps.push({ at: this.#length, size });
    return this;
  }

  /**
   * Where everything goes once each gap is opened at its place: the bytes written (this
   * writer's own buffer, not copied: the writer is done), the whole size, the written
   * segments (`written[from, to)` goes to `at`) and where each gap starts. The caller
   * copies the segments and fills the gaps (issue 15: a snapshot does both a bounded
   * amount per event-loop turn).
   */
  layout(): {
    written: Uint8Array;
    size: number;
    segments: { from: number; to: number; at: number }[];
    gapOffsets: number[];
  } {
    const segments: { from: number; to: number; at: number }[] = [];
    const gapOffsets: number[] = [];
    let from = 0;
    let to = 0;
    for (const g of this.#gaps) {
      segments.push({ from, to: g.at, at: to });
      to += g.at - from;
      from = g.at;
      gapOffsets.push(to);
      to += g.size;
    }
    segments.push({ from, to: this.#length, at: to });
    to += this.#length - from;
    return { written: this.#bytes, size: to, segments, gapOffsets };
  }

  finish(): Uint8Array {
    if (this.#gaps.length > 0) throw new Error("a writer with gaps is finished by layout()");
    // Exactly full (the expected size was right): the buffer itself, no copy.
    if (this.#length === this.#bytes.length) return this.#bytes;
    return this.#bytes.slice(0, this.#length);
  }
}

export class ByteReaderError extends Error {}

export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get done(): boolean {
    return this.#offset === this.#bytes.length;
  }

  #take(n: number): number {
    if (this.#offset + n > this.#bytes.length) throw new ByteReaderError("truncated snapshot");
    const at = this.#offset;
    this.#offset += n;
    return at;
  }

  u8(): number {
    return this.#view.getUint8(this.#take(1));
  }

  bool(): boolean {
    return this.u8() !== 0;
  }

  u32(): number {
    return this.#view.getUint32(this.#take(4), true);
  }

  s32(): number {
    return this.#view.getInt32(this.#take(4), true);
  }

  u64(): number {
    const v = this.#view.getBigUint64(this.#take(8), true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ByteReaderError("u64 out of range");
    return Number(v);
  }

  u64Big(): bigint {
    return this.#view.getBigUint64(this.#take(8), true);
  }

  bytes(): Uint8Array {
    const n = this.u32();
    const at = this.#take(n);
    return this.#bytes.slice(at, at + n);
  }

  string(): string {
    const n = this.u32();
    const at = this.#take(n);
    let s = "";
    for (let i = 0; i < n; i++) s += String.fromCharCode(this.#bytes[at + i]!);
    return s;
  }
}
