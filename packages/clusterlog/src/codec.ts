import { fail, ok, type Result } from "./result.ts";

// `struct dm_ulog_request`, protocol version 3 (spec §1.2). Host byte order on the
// kernel link; every host this runs on (x86-64, arm64) is little-endian, so the codec is
// fixed little-endian — which is also what the inter-node encoding must be (pitfall P19).

export const DM_ULOG_HEADER_SIZE = 160;
/** DM_UUID_LEN: 128 characters plus the terminating NUL. */
export const DM_UUID_LEN = 129;
export const MAX_UUID_CHARS = DM_UUID_LEN - 1;

/**
 * Byte offsets of `struct dm_ulog_request`'s fields (include/uapi/linux/dm-log-userspace.h):
 * the one header layout every reader and writer of the kernel's frames uses.
 */
export const ULOG_HEADER = {
  /** u64 luid */
  luid: 0,
  /** char uuid[DM_UUID_LEN], NUL-terminated */
  uuid: 8,
  /** u32 version */
  version: 140,
  /** s32 error */
  error: 144,
  /** u32 seq */
  seq: 148,
  /** u32 request_type */
  requestType: 152,
  /** u32 data_size */
  dataSize: 156,
} as const;

const OFF_LUID = ULOG_HEADER.luid;
const OFF_UUID = ULOG_HEADER.uuid;
const OFF_VERSION = ULOG_HEADER.version;
const OFF_ERROR = ULOG_HEADER.error;
const OFF_SEQ = ULOG_HEADER.seq;
const OFF_REQUEST_TYPE = ULOG_HEADER.requestType;
const OFF_DATA_SIZE = ULOG_HEADER.dataSize;

const U64_MAX = (1n << 64n) - 1n;
const U32_MAX = 0xffff_ffff;

/** A decoded request or reply. `data.length` is `data_size`. */
export interface DmUlogRequest {
  readonly luid: bigint;
  readonly uuid: string;
  readonly version: number;
  /** s32: 0 in requests, negative errno in replies. */
  readonly error: number;
  readonly seq: number;
  /** The raw u32 as on the wire; use `maskRequestType` for the type proper (§1.2). */
  readonly requestType: number;
  readonly data: Uint8Array;
}

/** The header fields a reply copies from its request (spec §1.1). */
export type RequestHeader = Pick<
  DmUlogRequest,
  "luid" | "uuid" | "version" | "seq" | "requestType"
>;

export type CodecErrorCode =
  | "short-message"
  | "data-size-mismatch"
  | "uuid-unterminated"
  | "uuid-invalid"
  | "field-out-of-range";

export interface DecodeOptions {
  /** Accept bytes after `160 + data_size` (netlink padding). Default false. */
  readonly allowTrailing?: boolean;
  /**
   * `data` is a view into `bytes` instead of a copy (PERF.md PB1): only for a caller that
   * never reuses or changes `bytes` afterwards (the socket transport's frames). Default
   * false.
   */
  readonly view?: boolean;
  /**
   * A request decoded before (the same connection's previous one, say): when its uuid has
   * the same bytes, its string is reused instead of built again (PB1).
   */
  readonly previous?: Pick<DmUlogRequest, "uuid"> | null;
}

export function decodeRequest(
  bytes: Uint8Array,
  options: DecodeOptions = {},
): Result<DmUlogRequest, CodecErrorCode> {
  if (bytes.length < DM_ULOG_HEADER_SIZE) {
    return fail("short-message", `need ${DM_ULOG_HEADER_SIZE} header bytes, got ${bytes.length}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dataSize = view.getUint32(OFF_DATA_SIZE, true);
  const available = bytes.length - DM_ULOG_HEADER_SIZE;
  if (dataSize > available || (!options.allowTrailing && dataSize !== available)) {
    return fail(
      "data-size-mismatch",
      `data_size ${dataSize} but ${available} payload bytes follow the header`,
    );
  }
  // The previous request's uuid (no NUL in it) followed by a NUL: the same uuid, found
  // without a search or a new string. Otherwise the first NUL, which must lie within the
  // 129-byte field (it ends at byte 137, inside the 160-byte header).
  const previous = options.previous?.uuid;
  let uuid: string | null = null;
  if (previous !== undefined && bytes[OFF_UUID + previous.length] === 0) {
    if (sameUuid(previous, bytes)) uuid = previous;
  }
  if (uuid === null) {
    const nul = bytes.indexOf(0, OFF_UUID);
    if (nul < 0 || nul >= OFF_UUID + DM_UUID_LEN) {
      return fail("uuid-unterminated", "uuid has no NUL within 129 bytes");
    }
    uuid = latin1(bytes, OFF_UUID, nul);
  }
  const start = DM_ULOG_HEADER_SIZE;
  return ok({
    luid: view.getBigUint64(OFF_LUID, true),
    uuid,
    version: view.getUint32(OFF_VERSION, true),
    error: view.getInt32(OFF_ERROR, true),
    seq: view.getUint32(OFF_SEQ, true),
    requestType: view.getUint32(OFF_REQUEST_TYPE, true),
    data: options.view
      ? bytes.subarray(start, start + dataSize)
      : bytes.slice(start, start + dataSize),
  });
}

function sameUuid(uuid: string, bytes: Uint8Array): boolean {
  for (let i = 0; i < uuid.length; i++) {
    const b = bytes[OFF_UUID + i];
    if (b === 0 || uuid.charCodeAt(i) !== b) return false;
  }
  return true;
}

/**
 * Latin-1 string of `bytes[from, to)`: every byte value kept, so decode→encode never loses
 * information. One call instead of a concatenation per character (PERF.md PB1).
 */
function latin1(bytes: Uint8Array, from: number, to: number): string {
  return String.fromCharCode.apply(null, bytes.subarray(from, to) as unknown as number[]);
}

function checkUuid(uuid: string): string | null {
  if (uuid.length > MAX_UUID_CHARS) return `uuid longer than ${MAX_UUID_CHARS} characters`;
  for (let i = 0; i < uuid.length; i++) {
    const c = uuid.charCodeAt(i);
    if (c === 0 || c > 0xff) return `uuid character ${i} is not a non-NUL byte`;
  }
  return null;
}

function isU32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= U32_MAX;
}

/**
 * Writes a reply in place: the request's header (`header`: exactly its 160 bytes) at `to` in
 * `out` (`view` over the same bytes), with error and data_size set and the payload after
 * it; data_size is 0 whenever error ≠ 0 (spec §2 preamble). Returns the bytes written.
 * For transports that frame replies straight into an output buffer (PERF.md PB1).
 */
export function writeReply(
  out: Uint8Array,
  view: DataView,
  to: number,
  header: Uint8Array,
  error: number,
  payload: Uint8Array,
): number {
  const dataSize = error === 0 ? payload.length : 0;
  out.set(header, to);
  view.setInt32(to + OFF_ERROR, error, true);
  view.setUint32(to + OFF_DATA_SIZE, dataSize, true);
  if (dataSize > 0) out.set(payload, to + DM_ULOG_HEADER_SIZE);
  return DM_ULOG_HEADER_SIZE + dataSize;
}

export function encodeRequest(req: DmUlogRequest): Result<Uint8Array, CodecErrorCode> {
  const uuidProblem = checkUuid(req.uuid);
  if (uuidProblem) return fail("uuid-invalid", uuidProblem);
  if (req.luid < 0n || req.luid > U64_MAX) return fail("field-out-of-range", "luid is not a u64");
  if (!isU32(req.version) || !isU32(req.seq) || !isU32(req.requestType)) {
    return fail("field-out-of-range", "version, seq and request_type must be u32");
  }
  if (!Number.isInteger(req.error) || req.error < -0x8000_0000 || req.error > 0x7fff_ffff) {
    return fail("field-out-of-range", "error must be an s32");
  }
  return ok(encodeUnchecked(req));
}

function encodeUnchecked(req: DmUlogRequest): Uint8Array {
  const bytes = new Uint8Array(DM_ULOG_HEADER_SIZE + req.data.length);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(OFF_LUID, req.luid, true);
  for (let i = 0; i < req.uuid.length; i++) bytes[OFF_UUID + i] = req.uuid.charCodeAt(i);
  view.setUint32(OFF_VERSION, req.version, true);
  view.setInt32(OFF_ERROR, req.error, true);
  view.setUint32(OFF_SEQ, req.seq, true);
  view.setUint32(OFF_REQUEST_TYPE, req.requestType, true);
  view.setUint32(OFF_DATA_SIZE, req.data.length, true);
  bytes.set(req.data, DM_ULOG_HEADER_SIZE);
  return bytes;
}

/**
 * A full reply: the request header with `error` and `data_size` filled in and the
 * request's seq (the kernel matches on it, spec §1.1). data_size is forced to 0 whenever
 * error ≠ 0, as cmirrord's do_request does (spec §2 preamble).
 */
export function encodeReply(header: RequestHeader, error: number, payload: Uint8Array): Uint8Array {
  return encodeUnchecked({
    luid: header.luid,
    uuid: header.uuid,
    version: header.version,
    seq: header.seq,
    requestType: header.requestType,
    error,
    data: error === 0 ? payload : new Uint8Array(0),
  });
}

// ---- payload helpers (all little-endian) ----

/**
 * A u64 as a JS number. Values above 2^53 cannot be a region of any log (region_count is
 * a u32 in cmirrord) so they become +Infinity, which every bounds check rejects (P21).
 */
function getU64Number(view: DataView, offset: number): number {
  const lo = view.getUint32(offset, true);
  const hi = view.getUint32(offset + 4, true);
  if (hi > 0x1f_ffff) return Number.POSITIVE_INFINITY;
  return hi * 0x1_0000_0000 + lo;
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** LE u32 at `offset` straight from the bytes: no DataView per call on the hot path (PB1). */
function u32At(data: Uint8Array, offset: number): number {
  return (
    (data[offset]! | (data[offset + 1]! << 8) | (data[offset + 2]! << 16)) +
    data[offset + 3]! * 0x100_0000
  );
}

/** `getU64Number` from the bytes. */
function u64NumberAt(data: Uint8Array, offset: number): number {
  if (offset + 8 > data.length)
    throw new RangeError("Offset is outside the bounds of the DataView");
  const hi = u32At(data, offset + 4);
  if (hi > 0x1f_ffff) return Number.POSITIVE_INFINITY;
  return hi * 0x1_0000_0000 + u32At(data, offset);
}

/** `u64[]` payload of MARK/CLEAR/integrated FLUSH; size already checked to be a multiple of 8. */
export function decodeRegionList(data: Uint8Array): number[] {
  const regions: number[] = [];
  for (let off = 0; off + 8 <= data.length; off += 8) regions.push(u64NumberAt(data, off));
  return regions;
}

export function decodeU64(data: Uint8Array, offset = 0): number {
  return u64NumberAt(data, offset);
}

export function decodeS64(data: Uint8Array, offset = 0): bigint {
  return viewOf(data).getBigInt64(offset, true);
}

/** `{ u64 region; s64 in_sync; }` of SET_REGION_SYNC (spec §2.13). */
export function decodeSetRegionSync(data: Uint8Array): { region: number; inSync: boolean } {
  const view = viewOf(data);
  const inSync = view.getUint32(8, true) !== 0 || view.getUint32(12, true) !== 0;
  return { region: getU64Number(view, 0), inSync };
}

export function encodeU64List(values: readonly (number | bigint)[]): Uint8Array {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) setU64(view, i * 8, values[i]!);
  return bytes;
}

/**
 * A u64 at `offset`. A safe non-negative integer is written as two u32 halves: no BigInt
 * on the hot path (every IS_CLEAN/IN_SYNC answer, PERF.md PB1).
 */
function setU64(view: DataView, offset: number, value: number | bigint): void {
  if (typeof value === "number" && value >= 0 && Number.isSafeInteger(value)) {
    view.setUint32(offset, value >>> 0, true);
    view.setUint32(offset + 4, Math.floor(value / 0x1_0000_0000), true);
  } else {
    view.setBigUint64(offset, BigInt(value), true);
  }
}

export function encodeU64(value: number | bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  setU64(new DataView(bytes.buffer), 0, value);
  return bytes;
}

/** s64 0/1 answers (IS_CLEAN, IN_SYNC) — exactly 0 or 1, pitfall P12. */
export function encodeBool64(value: boolean): Uint8Array {
  const bytes = new Uint8Array(8);
  bytes[0] = value ? 1 : 0;
  return bytes;
}

/** `{ s64; u64; }` pair of GET_RESYNC_WORK and IS_REMOTE_RECOVERING (spec §2.12, §2.17). */
export function encodePair64(first: number, second: number): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  if (first >= 0) setU64(view, 0, first);
  else view.setBigInt64(0, BigInt(first), true);
  setU64(view, 8, second);
  return bytes;
}

export function decodePair64(data: Uint8Array): { first: number; second: number } {
  const view = viewOf(data);
  return { first: Number(view.getBigInt64(0, true)), second: getU64Number(view, 8) };
}

export function encodeSetRegionSync(region: number | bigint, inSync: boolean): Uint8Array {
  return encodeU64List([region, inSync ? 1 : 0]);
}

/** ASCII bytes of `text`, optionally with a terminating NUL. */
export function encodeAscii(text: string, withNul = false): Uint8Array {
  const bytes = new Uint8Array(text.length + (withNul ? 1 : 0));
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

export function decodeAscii(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return text;
}
