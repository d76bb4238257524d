import {
  CN_MSG_LEN,
  DM_ULOG_HEADER_SIZE,
  NLMSG_HDRLEN,
  type ReplyForm,
  ULOG_HEADER,
  writeConnectorHeader,
  writeReply,
} from "@mirrorplane/clusterlog";

// How a transport puts a reply on its wire. The server hands every reply one way, to its
// session, as the core made it: the request's header, the reply's form (`replyForm`), the
// error and the payload; the session frames it with its transport's framing straight into
// its output buffer (PERF.md PB1: no buffer per reply), and the transport sends what the
// session wrote without looking inside a reply again.

export interface ReplyFraming {
  /** Bytes the framing adds to a reply (header and payload excluded), at the most. */
  readonly overhead: number;
  /**
   * Writes one reply at `to` in `out` (`view` over the same bytes): the request's 160-byte
   * header is at `at` in `source`. Returns the bytes written.
   */
  write(
    out: Uint8Array,
    view: DataView,
    to: number,
    source: DataView,
    at: number,
    form: ReplyForm,
    error: number,
    payload: Uint8Array,
  ): number;
}

/**
 * The stream socket (CLUSTERLOG-SERVER.md §1): every reply in full, after a 4-byte
 * little-endian length. A stream has no bare ACK: an "ack" reply goes as a full one.
 */
export const STREAM_FRAMING: ReplyFraming = {
  overhead: 4,
  write(out, view, to, source, at, _form, error, payload) {
    const length = writeReply(out, view, to + 4, headerOf(source, at), error, payload);
    view.setUint32(to, length, true);
    return 4 + length;
  },
};

const NLMSG_ALIGNTO = 4;

/** The request's header where it is (a view of it: one copy, into the output). */
function headerOf(source: DataView, at: number): Uint8Array {
  return new Uint8Array(source.buffer, source.byteOffset + at, DM_ULOG_HEADER_SIZE);
}

/**
 * The netlink connector (spec §1.1), replies from port `pid`: each one netlink message,
 * NLMSG_ALIGNed, one after another (`connectorMessages` takes them apart for sending):
 *  - full: nlmsg seq 0, cn_msg seq 0 and ack 0, the header with error and data_size and the
 *    payload (the kernel matches on the seq inside the dm_ulog_request);
 *  - ack: cn_msg.len 0, cn_msg.seq = the request's seq, cn_msg.ack = -error (scenario 12,
 *    P22).
 */
export function connectorFraming(pid: number): ReplyFraming {
  const framed = NLMSG_HDRLEN + CN_MSG_LEN;
  return {
    overhead: framed + NLMSG_ALIGNTO - 1,
    write(out, view, to, source, at, form, error, payload) {
      let length: number;
      if (form === "ack") {
        const seq = source.getUint32(at + ULOG_HEADER.seq, true);
        length = writeConnectorHeader(view, to, seq, -error, 0, pid, 0);
      } else {
        const body = writeReply(out, view, to + framed, headerOf(source, at), error, payload);
        length = writeConnectorHeader(view, to, 0, 0, 0, pid, body);
      }
      const aligned = Math.ceil(length / NLMSG_ALIGNTO) * NLMSG_ALIGNTO;
      out.fill(0, to + length, to + aligned);
      return aligned;
    },
  };
}

/**
 * The netlink messages `connectorFraming` wrote back to back, each exactly nlmsg_len bytes
 * (one datagram each: the kernel's connector reads one message per datagram).
 */
export function* connectorMessages(bytes: Uint8Array): Generator<Uint8Array> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let off = 0;
  while (bytes.length - off >= NLMSG_HDRLEN) {
    const length = view.getUint32(off, true);
    yield bytes.subarray(off, off + length);
    off += Math.ceil(length / NLMSG_ALIGNTO) * NLMSG_ALIGNTO;
  }
}

/** Whether a message `connectorFraming` wrote is a bare ACK/NACK (cn_msg.len 0). */
export function isConnectorAck(message: Uint8Array): boolean {
  return message.length === NLMSG_HDRLEN + CN_MSG_LEN;
}

/** The request type of a full reply `connectorFraming` wrote (for a log line). */
export function connectorReplyType(message: Uint8Array): number {
  const at = NLMSG_HDRLEN + CN_MSG_LEN + ULOG_HEADER.requestType;
  if (message.length < NLMSG_HDRLEN + CN_MSG_LEN + DM_ULOG_HEADER_SIZE) return 0;
  return new DataView(message.buffer, message.byteOffset).getUint32(at, true) & 0xff;
}
