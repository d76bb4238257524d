import { fail, ok, type Result } from "./result.ts";

// `struct dm_ulog_request`, protocol version 3 (spec §1.2). Host byte order on the
// kernel link; every host this runs on (x86-64, arm64) is little-endian, so the codec is
// fixed little-endian — which is also what the inter-node encoding must be (pitfall P19).

export const DM_ULOG_HEADER_SIZE = 160;
/** DM_UUID_LEN: 128 characters plus the terminating NUL. */
export const DM_UUID_LEN = 129;
export const MAX_UUID_CHARS = DM_UUID_LEN - 1;

const OFF_LUID = 0;
const OFF_UUID = 8;
const OFF_VERSION = 140;
const OFF_ERROR = 144;
const OFF_SEQ = 148;
const OFF_REQUEST_TYPE = 152;
const OFF_DATA_SIZE = 156;

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
  let uuidEnd = -1;
  for (let i = 0; i < DM_UUID_LEN; i++) {
    if (bytes[OFF_UUID + i] === 0) {
      uuidEnd = i;
      break;
    }
  }
  if (uuidEnd < 0) return fail("uuid-unterminated", "uuid has no NUL within 129 bytes");
  // Latin-1 keeps every byte value, so decode→encode never loses information.
  let uuid = "";
  for (let i = 0; i < uuidEnd; i++) uuid += String.fromCharCode(bytes[OFF_UUID + i]!);
  const start = DM_ULOG_HEADER_SIZE;
  return ok({
    luid: view.getBigUint64(OFF_LUID, true),
    uuid,
    version: view.getUint32(OFF_VERSION, true),
    error: view.getInt32(OFF_ERROR, true),
    seq: view.getUint32(OFF_SEQ, true),
    requestType: view.getUint32(OFF_REQUEST_TYPE, true),
    data: bytes.slice(start, start + dataSize),
  });
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

/** `u64[]` payload of MARK/CLEAR/integrated FLUSH; size already checked to be a multiple of 8. */
export function decodeRegionList(data: Uint8Array): number[] {
  const view = viewOf(data);
  const regions: number[] = [];
  for (let off = 0; off + 8 <= data.length; off += 8) regions.push(getU64Number(view, off));
  return regions;
}

export function decodeU64(data: Uint8Array, offset = 0): number {
  return getU64Number(viewOf(data), offset);
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
  values.forEach((v, i) => {
    view.setBigUint64(i * 8, BigInt(v), true);
  });
  return bytes;
}

export function encodeU64(value: number | bigint): Uint8Array {
  return encodeU64List([value]);
}

/** s64 0/1 answers (IS_CLEAN, IN_SYNC) — exactly 0 or 1, pitfall P12. */
export function encodeBool64(value: boolean): Uint8Array {
  return encodeU64(value ? 1 : 0);
}

/** `{ s64; u64; }` pair of GET_RESYNC_WORK and IS_REMOTE_RECOVERING (spec §2.12, §2.17). */
export function encodePair64(first: number, second: number): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setBigInt64(0, BigInt(first), true);
  view.setBigUint64(8, BigInt(second), true);
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
