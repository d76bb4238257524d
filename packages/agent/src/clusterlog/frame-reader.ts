import { DEFAULT_MAX_FRAME_SIZE, DM_ULOG_HEADER_SIZE } from "@mirrorplane/clusterlog";

// The local stream transport's framing (CLUSTERLOG-SERVER.md "Transport"): a 32-bit
// little-endian length L, then L bytes of dm_ulog_request header and payload. Unlike the
// core's FrameSplitter this reader keeps a connection usable after an oversized frame —
// it reads the frame's header, discards the rest and lets the server answer it with an
// error — and hands out frames without copying when they sit inside one chunk (a net
// chunk is never reused by Node, so views into it stay valid).

/** Largest frame served: one connector message (spec §1.1). */
export const MAX_FRAME_SIZE = DEFAULT_MAX_FRAME_SIZE;
/** Larger than this, a length prefix is taken for a stream out of step: close. */
export const DISCARD_LIMIT = 1 << 20;

export interface FrameSink {
  /** A whole frame (header + payload); a view the sink may keep. */
  frame(bytes: Uint8Array): void;
  /**
   * Optional, used instead of `frame`: the frame is `length` bytes at `at` in `view`, a
   * DataView of the chunk the sink may keep (PB1: no view per frame).
   */
  frameAt?(view: DataView, at: number, length: number): void;
  /** A frame longer than MAX_FRAME_SIZE: its 160-byte header; the rest is skipped. */
  oversized(header: Uint8Array, length: number): void;
  /** The stream cannot be framed any more; nothing further is reported. */
  fatal(reason: string): void;
}

export class FrameReader {
  readonly #maxFrameSize: number;
  readonly #discardLimit: number;
  #held: Uint8Array | null = null;
  #discard = 0;
  #stopped = false;
  /**
   * Input not yet looked at because a turn's budget ran out: views of the chunks (a net
   * chunk is never reused), the first one starting at a frame boundary.
   */
  #backlog: Uint8Array[] = [];

  constructor(options: { maxFrameSize?: number; discardLimit?: number } = {}) {
    this.#maxFrameSize = options.maxFrameSize ?? MAX_FRAME_SIZE;
    this.#discardLimit = Math.max(options.discardLimit ?? DISCARD_LIMIT, this.#maxFrameSize);
  }

  /** Bytes held back waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.#held?.length ?? 0;
  }

  /** Whether input is waiting for another turn (`resume`). */
  get backlogged(): boolean {
    return this.#backlog.length > 0;
  }

  /** Report nothing more (the connection is closing). */
  stop(): void {
    this.#stopped = true;
    this.#held = null;
    this.#backlog = [];
  }

  /**
   * Report the frames of `chunk`, at most `budget` of them (oversized ones included); what
   * is left waits, in order, for `resume`, and so does every chunk pushed meanwhile
   * (`backlogged`). Returns how many frames were reported.
   */
  push(chunk: Uint8Array, sink: FrameSink, budget = Number.POSITIVE_INFINITY): number {
    if (this.#stopped) return 0;
    if (this.#backlog.length > 0) {
      this.#backlog.push(chunk);
      return 0;
    }
    return this.#consume(chunk, sink, budget);
  }

  /** Go on with the backlog, at most `budget` frames; returns how many were reported. */
  resume(sink: FrameSink, budget: number): number {
    let reported = 0;
    while (!this.#stopped && this.#backlog.length > 0 && reported < budget) {
      const before = this.#backlog.length;
      reported += this.#consume(this.#backlog.shift()!, sink, budget - reported);
      // Out of budget inside that chunk: its rest went back first in line.
      if (this.#backlog.length === before) break;
    }
    return reported;
  }

  /**
   * Frames of `chunk`, up to `budget` of them; returns how many were reported. All of it
   * taken (frames reported, a partial frame held), or the rest put first in the backlog.
   */
  #consume(chunk: Uint8Array, sink: FrameSink, budget: number): number {
    if (budget <= 0) {
      this.#backlog.unshift(chunk);
      return 0;
    }
    let data = this.#skipDiscarded(chunk);
    let reported = 0;
    // A frame begun in an earlier chunk: completed from the front of this one, copying at
    // most that frame — not the whole chunk behind it (a 64 KiB copy, and as much garbage,
    // per chunk of a pipelining client; issue 14). First its length prefix if that was
    // split too, then the frame.
    while (this.#held) {
      const held = this.#held;
      const need = this.#completes(held) - held.length;
      const take = Math.min(Math.max(need, 0), data.length);
      const joined = new Uint8Array(held.length + take);
      joined.set(held, 0);
      joined.set(data.subarray(0, take), held.length);
      this.#held = null;
      data = data.subarray(take);
      if (take < need) {
        this.#held = joined; // still not whole: all of this chunk went into it
        return reported;
      }
      // One frame (or its length prefix alone, held again): reported < budget here.
      reported += this.#frames(joined, sink, budget - reported);
      if (this.#stopped) return reported;
      data = this.#skipDiscarded(data);
      if (data.length === 0) return reported;
      if (!this.#held && reported >= budget) {
        this.#backlog.unshift(data);
        return reported;
      }
    }
    return reported + this.#frames(data, sink, budget - reported);
  }

  /** How long `held` (a frame's start) must be to be handed on: its length prefix, then its frame (or an oversized frame's header). */
  #completes(held: Uint8Array): number {
    if (held.length < 4) return 4;
    const length = new DataView(held.buffer, held.byteOffset, 4).getUint32(0, true);
    // A length the stream cannot have: nothing more is needed to refuse it (`#frames`).
    if (length < DM_ULOG_HEADER_SIZE || length > this.#discardLimit) return held.length;
    if (length > this.#maxFrameSize) return 4 + DM_ULOG_HEADER_SIZE;
    return 4 + length;
  }

  #skipDiscarded(data: Uint8Array): Uint8Array {
    if (this.#discard === 0) return data;
    const skipped = Math.min(this.#discard, data.length);
    this.#discard -= skipped;
    return data.subarray(skipped);
  }

  /** `#consume` for a chunk that starts at a frame boundary (or with a held frame's start). */
  #frames(data: Uint8Array, sink: FrameSink, budget: number): number {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let off = 0;
    let reported = 0;
    while (!this.#stopped && data.length - off >= 4) {
      if (reported >= budget) {
        // Out of budget at a frame boundary: the rest waits for another turn, first in line.
        this.#backlog.unshift(data.subarray(off));
        return reported;
      }
      const length = view.getUint32(off, true);
      if (length < DM_ULOG_HEADER_SIZE) {
        this.#fatal(
          sink,
          `frame length ${length} is shorter than the ${DM_ULOG_HEADER_SIZE}-byte header`,
        );
        return reported;
      }
      if (length > this.#maxFrameSize) {
        if (length > this.#discardLimit) {
          this.#fatal(
            sink,
            `frame length ${length} exceeds ${this.#discardLimit}: stream out of step`,
          );
          return reported;
        }
        if (data.length - off < 4 + DM_ULOG_HEADER_SIZE) break;
        sink.oversized(data.slice(off + 4, off + 4 + DM_ULOG_HEADER_SIZE), length);
        reported++;
        const available = data.length - off - 4;
        if (available >= length) {
          off += 4 + length;
          continue;
        }
        this.#discard = length - available;
        off = data.length;
        break;
      }
      if (data.length - off < 4 + length) break;
      // The chunk's DataView and an offset where the sink takes them (no object per frame);
      // otherwise a plain Uint8Array view: Buffer#subarray builds a Buffer through its
      // species, which costs several times more per frame (PERF.md PB1).
      if (sink.frameAt) sink.frameAt(view, off + 4, length);
      else sink.frame(new Uint8Array(data.buffer, data.byteOffset + off + 4, length));
      off += 4 + length;
      reported++;
    }
    if (!this.#stopped && off < data.length) this.#held = data.slice(off);
    return reported;
  }

  #fatal(sink: FrameSink, reason: string): void {
    this.stop();
    sink.fatal(reason);
  }
}

/** Prefix an encoded dm_ulog_request with its little-endian length. */
export function frame(message: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(4 + message.length);
  new DataView(bytes.buffer).setUint32(0, message.length, true);
  bytes.set(message, 4);
  return bytes;
}
