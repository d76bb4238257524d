import {
  type CodecErrorCode,
  DM_ULOG_HEADER_SIZE,
  type DmUlogRequest,
  decodeRequest,
} from "./codec.ts";
import { fail, ok, type Result } from "./result.ts";

// Netlink connector framing around a dm_ulog_request (spec §1.1). Pure byte layout only:
// the socket itself (AF_NETLINK, group 7) belongs to the agent.

export const NLMSG_HDRLEN = 16;
export const CN_MSG_LEN = 20;
export const NLMSG_DONE = 3;
export const CN_IDX_DM = 0x7;
export const CN_VAL_DM_USERSPACE_LOG = 0x1;
/** CONNECTOR_MAX_MSG_SIZE: the connector rejects longer messages (spec §1.1). */
export const CONNECTOR_MAX_MSG_SIZE = 16384;

export interface CnMsg {
  readonly idx: number;
  readonly val: number;
  readonly seq: number;
  readonly ack: number;
  readonly len: number;
  readonly flags: number;
}

export interface ConnectorMessage {
  readonly nlmsgSeq: number;
  readonly nlmsgPid: number;
  readonly cn: CnMsg;
  /** Absent for a bare ACK/NACK (cn.len = 0). */
  readonly request: DmUlogRequest | null;
}

export type ConnectorErrorCode =
  | CodecErrorCode
  | "short-netlink"
  | "bad-length"
  | "not-dm-log"
  | "incomplete-message";

export function decodeConnectorMessage(
  bytes: Uint8Array,
): Result<ConnectorMessage, ConnectorErrorCode> {
  if (bytes.length < NLMSG_HDRLEN + CN_MSG_LEN) {
    return fail("short-netlink", `netlink message of ${bytes.length} bytes is too short`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nlmsgLen = view.getUint32(0, true);
  if (nlmsgLen > bytes.length || nlmsgLen < NLMSG_HDRLEN + CN_MSG_LEN) {
    return fail("bad-length", `nlmsg_len ${nlmsgLen} does not fit ${bytes.length} bytes`);
  }
  const c = NLMSG_HDRLEN;
  const cn: CnMsg = {
    idx: view.getUint32(c, true),
    val: view.getUint32(c + 4, true),
    seq: view.getUint32(c + 8, true),
    ack: view.getUint32(c + 12, true),
    len: view.getUint16(c + 16, true),
    flags: view.getUint16(c + 18, true),
  };
  if (cn.idx !== CN_IDX_DM || cn.val !== CN_VAL_DM_USERSPACE_LOG) {
    return fail("not-dm-log", `connector id {${cn.idx}, ${cn.val}} is not dm-log-userspace`);
  }
  const base = { nlmsgSeq: view.getUint32(8, true), nlmsgPid: view.getUint32(12, true), cn };
  if (cn.len === 0) return ok({ ...base, request: null });
  const start = NLMSG_HDRLEN + CN_MSG_LEN;
  if (cn.len < DM_ULOG_HEADER_SIZE) {
    // The kernel logs "Incomplete message" and drops these (spec §1.1).
    return fail("incomplete-message", `cn_msg.len ${cn.len} is shorter than the header`);
  }
  if (start + cn.len > nlmsgLen) {
    return fail("bad-length", `cn_msg.len ${cn.len} overruns nlmsg_len ${nlmsgLen}`);
  }
  const decoded = decodeRequest(bytes.subarray(start, start + cn.len));
  if (!decoded.ok) return decoded;
  return ok({ ...base, request: decoded.value });
}

function frame(cnSeq: number, ack: number, nlmsgSeq: number, pid: number, body: Uint8Array) {
  const bytes = new Uint8Array(NLMSG_HDRLEN + CN_MSG_LEN + body.length);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, bytes.length, true);
  view.setUint16(4, NLMSG_DONE, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, nlmsgSeq, true);
  view.setUint32(12, pid, true);
  const c = NLMSG_HDRLEN;
  view.setUint32(c, CN_IDX_DM, true);
  view.setUint32(c + 4, CN_VAL_DM_USERSPACE_LOG, true);
  view.setUint32(c + 8, cnSeq, true);
  view.setUint32(c + 12, ack, true);
  view.setUint16(c + 16, body.length, true);
  bytes.set(body, NLMSG_HDRLEN + CN_MSG_LEN);
  return bytes;
}

/**
 * A full reply as cmirrord sends it: nlmsg seq 0, cn_msg seq 0 — the kernel matches on the
 * seq inside the dm_ulog_request (spec §1.1, scenario 1). `reply` is an encoded header.
 */
export function encodeConnectorReply(reply: Uint8Array, pid: number): Uint8Array {
  return frame(0, 0, 0, pid, reply);
}

/**
 * A bare ACK/NACK: cn_msg.len 0, cn_msg.seq = request seq, ack = positive errno
 * (0 = success). Used for CLEAR_REGION and for type-0 requests (spec §1.1, P22).
 */
export function encodeConnectorAck(requestSeq: number, ackErrno: number, pid: number): Uint8Array {
  return frame(requestSeq, ackErrno, 0, pid, new Uint8Array(0));
}

/** A request as the kernel sends it (both seqs = request seq); for simulators and tests. */
export function encodeConnectorRequest(request: Uint8Array, seq: number): Uint8Array {
  return frame(seq, 0, seq, 0, request);
}
