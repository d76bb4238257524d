import { EINVAL } from "./errno.ts";

// Request numbers of uapi `dm-log-userspace.h` (spec §1.3). Do not confuse with the 2006
// precursor's numbering (IS_REMOTE_RECOVERING was 8 there).
export const DM_ULOG_CTR = 1;
export const DM_ULOG_DTR = 2;
export const DM_ULOG_PRESUSPEND = 3;
export const DM_ULOG_POSTSUSPEND = 4;
export const DM_ULOG_RESUME = 5;
export const DM_ULOG_GET_REGION_SIZE = 6;
export const DM_ULOG_IS_CLEAN = 7;
export const DM_ULOG_IN_SYNC = 8;
export const DM_ULOG_FLUSH = 9;
export const DM_ULOG_MARK_REGION = 10;
export const DM_ULOG_CLEAR_REGION = 11;
export const DM_ULOG_GET_RESYNC_WORK = 12;
export const DM_ULOG_SET_REGION_SYNC = 13;
export const DM_ULOG_GET_SYNC_COUNT = 14;
export const DM_ULOG_STATUS_INFO = 15;
export const DM_ULOG_STATUS_TABLE = 16;
export const DM_ULOG_IS_REMOTE_RECOVERING = 17;

/** Servers must look only at the low 8 bits (spec §1.2; cmirrord does not — [REC] mask). */
export const DM_ULOG_REQUEST_MASK = 0xff;
export const DM_ULOG_REQUEST_VERSION = 3;

/** Most regions one MARK/CLEAR/FLUSH carries from the kernel (MAX_FLUSH_GROUP_COUNT, §2.9). */
export const MAX_FLUSH_GROUP_COUNT = 32;
/** 512-byte preallocated kernel buffer minus cn_msg (20) and header (160), spec §1.4. */
export const MAX_REQUEST_PAYLOAD = 332;
/** Reply capacity the kernel gives CTR (DM_NAME_LEN), spec §1.4 and pitfall P3. */
export const CTR_REPLY_CAPACITY = 128;

export type RequestType =
  | typeof DM_ULOG_CTR
  | typeof DM_ULOG_DTR
  | typeof DM_ULOG_PRESUSPEND
  | typeof DM_ULOG_POSTSUSPEND
  | typeof DM_ULOG_RESUME
  | typeof DM_ULOG_GET_REGION_SIZE
  | typeof DM_ULOG_IS_CLEAN
  | typeof DM_ULOG_IN_SYNC
  | typeof DM_ULOG_FLUSH
  | typeof DM_ULOG_MARK_REGION
  | typeof DM_ULOG_CLEAR_REGION
  | typeof DM_ULOG_GET_RESYNC_WORK
  | typeof DM_ULOG_SET_REGION_SYNC
  | typeof DM_ULOG_GET_SYNC_COUNT
  | typeof DM_ULOG_STATUS_INFO
  | typeof DM_ULOG_STATUS_TABLE
  | typeof DM_ULOG_IS_REMOTE_RECOVERING;

const NAMES: Record<RequestType, string> = {
  1: "CTR",
  2: "DTR",
  3: "PRESUSPEND",
  4: "POSTSUSPEND",
  5: "RESUME",
  6: "GET_REGION_SIZE",
  7: "IS_CLEAN",
  8: "IN_SYNC",
  9: "FLUSH",
  10: "MARK_REGION",
  11: "CLEAR_REGION",
  12: "GET_RESYNC_WORK",
  13: "SET_REGION_SYNC",
  14: "GET_SYNC_COUNT",
  15: "STATUS_INFO",
  16: "STATUS_TABLE",
  17: "IS_REMOTE_RECOVERING",
};

/** The request type proper: `request_type & 0xFF` (spec §1.2 [REC]). */
export function maskRequestType(rawRequestType: number): number {
  return rawRequestType & DM_ULOG_REQUEST_MASK;
}

export function isRequestType(type: number): type is RequestType {
  return Number.isInteger(type) && type >= DM_ULOG_CTR && type <= DM_ULOG_IS_REMOTE_RECOVERING;
}

export function requestTypeName(type: number): string {
  return isRequestType(type) ? NAMES[type] : `UNKNOWN(${type})`;
}

/**
 * How a reply goes back to the kernel over the connector (spec §1.1): `"ack"` is a bare
 * ACK/NACK (cn_msg.len 0, cn_msg.seq = the request's seq, ack = -error), `"full"` the
 * request's header with error, data_size and payload. A stream socket sends every reply
 * in full.
 */
export type ReplyForm = "full" | "ack";

/**
 * The form of every reply to a request of this raw type: a bare ACK for CLEAR_REGION
 * (cmirrord acks it before distributing it, §2.11, scenario 12) and for type 0 ("bad
 * transmission": NACK EAGAIN so the kernel resends, P22); full for every other.
 */
export function replyForm(rawRequestType: number): ReplyForm {
  const type = rawRequestType & DM_ULOG_REQUEST_MASK;
  return type === 0 || type === DM_ULOG_CLEAR_REGION ? "ack" : "full";
}

/**
 * Whether the kernel sends this request through its -ESRCH wrapper (spec §1.5): every
 * request but CTR, DTR, PRESUSPEND, POSTSUSPEND, RESUME and GET_REGION_SIZE. Only a
 * wrapped request may be answered -ESRCH (the kernel then re-sends the CTR and retries).
 */
export function isEsrchWrapped(type: number): boolean {
  return type > DM_ULOG_GET_REGION_SIZE || type < DM_ULOG_CTR;
}

/**
 * Where cmirrord handles a request (spec §4.2). Clustered requests for a UUID this node
 * has no group for fail with -ENOENT, local ones with -EINVAL (spec §2 preamble).
 */
export function isClusteredRequest(type: RequestType): boolean {
  switch (type) {
    case DM_ULOG_IS_CLEAN:
    case DM_ULOG_FLUSH:
    case DM_ULOG_MARK_REGION:
    case DM_ULOG_CLEAR_REGION:
    case DM_ULOG_GET_RESYNC_WORK:
    case DM_ULOG_SET_REGION_SYNC:
    case DM_ULOG_STATUS_INFO:
    case DM_ULOG_IS_REMOTE_RECOVERING:
    case DM_ULOG_POSTSUSPEND:
      return true;
    default:
      return false;
  }
}

/**
 * Payload-size rule of each request (spec §2): returns 0 when `dataSize` is acceptable,
 * otherwise the (negative) errno the handler must answer with.
 *
 * Requests that carry no payload ignore any bytes they get, like cmirrord; the kernel never
 * sends any (DTR's uapi comment notwithstanding, §2.2).
 */
export function checkRequestPayloadSize(type: RequestType, dataSize: number): number {
  switch (type) {
    case DM_ULOG_CTR:
      return dataSize > 0 ? 0 : -EINVAL; // §2.1 step 1
    case DM_ULOG_IS_CLEAN:
    case DM_ULOG_IN_SYNC:
    case DM_ULOG_IS_REMOTE_RECOVERING:
      return dataSize === 8 ? 0 : -EINVAL;
    case DM_ULOG_SET_REGION_SYNC:
      return dataSize === 16 ? 0 : -EINVAL;
    case DM_ULOG_MARK_REGION:
    case DM_ULOG_CLEAR_REGION:
      return dataSize % 8 === 0 ? 0 : -EINVAL; // §2.10, §2.11
    case DM_ULOG_FLUSH:
      // Integrated flush carries u64 regions; a ragged size is malformed (scenario 14 [REC]).
      return dataSize % 8 === 0 ? 0 : -EINVAL;
    default:
      return 0;
  }
}

/**
 * Exact size of a successful reply's payload for fixed-size replies (spec §2, scenario 13,
 * pitfall P3). `null` for CTR and the status strings, whose size varies.
 */
export function fixedReplySize(type: RequestType): number | null {
  switch (type) {
    case DM_ULOG_GET_REGION_SIZE:
    case DM_ULOG_IS_CLEAN:
    case DM_ULOG_IN_SYNC:
    case DM_ULOG_GET_SYNC_COUNT:
      return 8;
    case DM_ULOG_GET_RESYNC_WORK:
    case DM_ULOG_IS_REMOTE_RECOVERING:
      return 16;
    case DM_ULOG_CTR:
    case DM_ULOG_STATUS_INFO:
    case DM_ULOG_STATUS_TABLE:
      return null;
    default:
      return 0;
  }
}
