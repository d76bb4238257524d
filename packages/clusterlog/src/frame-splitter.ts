import { DM_ULOG_HEADER_SIZE } from "./codec.ts";
import { fail, ok, type Result } from "./result.ts";

// Local stream-socket framing (ARCHITECTURE "Transports"): each frame is a 4-byte
// host-order length followed by that many bytes of dm_ulog_request. Host order is
// little-endian on every supported host; `littleEndian: false` exists for completeness.

export const FRAME_PREFIX_SIZE = 4;
/** Default cap: one connector message (spec §1.1) is the largest thing a frame can carry. */
export const DEFAULT_MAX_FRAME_SIZE = 16384;

export type FrameErrorCode = "frame-too-short" | "frame-too-large";

export interface FrameSplitterOptions {
  readonly maxFrameSize?: number;
  readonly littleEndian?: boolean;
}

/**
 * Incremental splitter: feed it whatever chunks the socket delivers, get complete frames
 * back (copies the caller owns). A bad length prefix means the stream is out of step and
 * cannot be resynchronised, so the splitter stays failed and every later push returns the
 * same error; the caller should drop the connection.
 */
export class FrameSplitter {
  readonly #maxFrameSize: number;
  readonly #littleEndian: boolean;
  #buffer = new Uint8Array(4096);
  #start = 0;
  #end = 0;
  #failure: { code: FrameErrorCode; message: string } | null = null;

  constructor(options: FrameSplitterOptions = {}) {
    this.#maxFrameSize = options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE;
    this.#littleEndian = options.littleEndian ?? true;
  }

  /** Bytes held back waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  push(chunk: Uint8Array): Result<Uint8Array[], FrameErrorCode> {
    if (this.#failure) return fail(this.#failure.code, this.#failure.message);
    this.#append(chunk);
    const frames: Uint8Array[] = [];
    const view = new DataView(this.#buffer.buffer);
    while (this.#end - this.#start >= FRAME_PREFIX_SIZE) {
      const length = view.getUint32(this.#start, this.#littleEndian);
      if (length < DM_ULOG_HEADER_SIZE) {
        return this.#fail("frame-too-short", `frame length ${length} < ${DM_ULOG_HEADER_SIZE}`);
      }
      if (length > this.#maxFrameSize) {
        return this.#fail("frame-too-large", `frame length ${length} > ${this.#maxFrameSize}`);
      }
      if (this.#end - this.#start < FRAME_PREFIX_SIZE + length) break;
      const from = this.#start + FRAME_PREFIX_SIZE;
      frames.push(this.#buffer.slice(from, from + length));
      this.#start = from + length;
    }
    if (this.#start === this.#end) {
      this.#start = 0;
      this.#end = 0;
    }
    return ok(frames);
  }

  #fail(code: FrameErrorCode, message: string): Result<Uint8Array[], FrameErrorCode> {
    this.#failure = { code, message };
    return fail(code, message);
  }

  #append(chunk: Uint8Array): void {
    const held = this.#end - this.#start;
    if (this.#end + chunk.length > this.#buffer.length) {
      // Compact, and grow only when the held bytes plus the chunk really need it, so a
      // long-lived connection does not copy its whole history.
      let capacity = this.#buffer.length;
      while (capacity < held + chunk.length) capacity *= 2;
      if (capacity === this.#buffer.length) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        const next = new Uint8Array(capacity);
        next.set(this.#buffer.subarray(this.#start, this.#end), 0);
        this.#buffer = next;
      }
      this.#start = 0;
      this.#end = held;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}

/** Prefix an encoded dm_ulog_request with its length. */
export function encodeFrame(request: Uint8Array, littleEndian = true): Uint8Array {
  const bytes = new Uint8Array(FRAME_PREFIX_SIZE + request.length);
  new DataView(bytes.buffer).setUint32(0, request.length, littleEndian);
  bytes.set(request, FRAME_PREFIX_SIZE);
  return bytes;
}
