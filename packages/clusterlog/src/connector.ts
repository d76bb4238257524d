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

/** A connector message's framing, its body not decoded (`connectorBody`). */
export interface ConnectorBody {
  readonly nlmsgSeq: number;
  readonly nlmsgPid: number;
  readonly cn: CnMsg;
  /** The dm_ulog_request bytes (a view of the message); null for a bare ACK/NACK. */
  readonly body: Uint8Array | null;
}

/**
 * The framing of one netlink message carrying a connector message (spec §1.1): nlmsghdr,
 * cn_msg for dm-log-userspace, and the body it frames, which is not decoded. What the
 * kernel drops — too short, lengths that overrun, a body shorter than the dm_ulog_request
 * header ("Incomplete message") — fails; so does another connector user's message.
 */
export function connectorBody(bytes: Uint8Array): Result<ConnectorBody, ConnectorErrorCode> {
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
  if (cn.len === 0) return ok({ ...base, body: null });
  const start = NLMSG_HDRLEN + CN_MSG_LEN;
  if (cn.len < DM_ULOG_HEADER_SIZE) {
    // The kernel logs "Incomplete message" and drops these (spec §1.1).
    return fail("incomplete-message", `cn_msg.len ${cn.len} is shorter than the header`);
  }
  if (start + cn.len > nlmsgLen) {
    return fail("bad-length", `cn_msg.len ${cn.len} overruns nlmsg_len ${nlmsgLen}`);
  }
  return ok({ ...base, body: bytes.subarray(start, start + cn.len) });
}

/** A connector message with its dm_ulog_request decoded. */
export function decodeConnectorMessage(
  bytes: Uint8Array,
): Result<ConnectorMessage, ConnectorErrorCode> {
  const framed = connectorBody(bytes);
  if (!framed.ok) return framed;
  const { body, ...base } = framed.value;
  if (body === null) return ok({ ...base, request: null });
  const decoded = decodeRequest(body);
  if (!decoded.ok) return decoded;
  return ok({ ...base, request: decoded.value });
}

/**
 * Writes nlmsghdr and cn_msg for a body of `bodyLength` bytes at `at` in `view`
 * (NLMSG_DONE, flags 0); the body goes right after, at `at + NLMSG_HDRLEN + CN_MSG_LEN`.
 * Returns nlmsg_len. For transports that frame messages straight into an output buffer.
 */
export function writeConnectorHeader(
  view: DataView,
  at: number,
  cnSeq: number,
  ack: number,
  nlmsgSeq: number,
  pid: number,
  bodyLength: number,
): number {
  const length = NLMSG_HDRLEN + CN_MSG_LEN + bodyLength;
  view.setUint32(at, length, true);
  view.setUint16(at + 4, NLMSG_DONE, true);
  view.setUint16(at + 6, 0, true);
  view.setUint32(at + 8, nlmsgSeq, true);
  view.setUint32(at + 12, pid, true);
  const c = at + NLMSG_HDRLEN;
  view.setUint32(c, CN_IDX_DM, true);
  view.setUint32(c + 4, CN_VAL_DM_USERSPACE_LOG, true);
  view.setUint32(c + 8, cnSeq, true);
  view.setUint32(c + 12, ack, true);
  view.setUint16(c + 16, bodyLength, true);
  view.setUint16(c + 18, 0, true);
  return length;
}

function frame(cnSeq: number, ack: number, nlmsgSeq: number, pid: number, body: Uint8Array) {
  const bytes = new Uint8Array(NLMSG_HDRLEN + CN_MSG_LEN + body.length);
  writeConnectorHeader(new DataView(bytes.buffer), 0, cnSeq, ack, nlmsgSeq, pid, body.length);
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
