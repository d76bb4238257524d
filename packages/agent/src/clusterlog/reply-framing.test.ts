import {
  connectorBody,
  decodeRequest,
  encodeConnectorAck,
  encodeConnectorReply,
  encodeConnectorRequest,
  encodeFrame,
  encodeReply,
  encodeRequest,
  makeRequest,
  replyForm,
} from "@mirrorplane/clusterlog";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  connectorFraming,
  connectorMessages,
  isConnectorAck,
  STREAM_FRAMING,
} from "./reply-framing.ts";

// The one-way kernel path (issue 12): the session frames each reply with its transport's
// framing straight into its output. These properties pin that framing to the byte layouts
// the core's encoders give (the golden checks of codec.test.ts and connector.test.ts), so a
// reply is byte for byte what it was when each transport re-encoded it on its own.

const PID = 4242;

const request = fc
  .record({
    luid: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    uuid: fc.stringMatching(/^[A-Za-z0-9-]{1,128}$/),
    seq: fc.nat({ max: 0xffff_ffff }),
    requestType: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.nat({ max: 0xffff_ffff })),
    error: fc.integer({ min: -200, max: 0 }),
    payload: fc.uint8Array({ maxLength: 300 }),
  })
  .map((r) => {
    const bytes = encodeRequest(
      makeRequest({ node: 1, luid: r.luid, uuid: r.uuid, seq: r.seq, type: r.requestType }),
    );
    if (!bytes.ok) throw new Error(bytes.error.message);
    const decoded = decodeRequest(bytes.value);
    if (!decoded.ok) throw new Error(decoded.error.message);
    // The request's header as the wire has it, and as the core decodes it.
    return { ...r, header: bytes.value, decoded: decoded.value };
  });

/** Frames one reply the way a session does: into a used buffer at an unaligned offset. */
function framed(framing: typeof STREAM_FRAMING, header: Uint8Array, r: Replied): Uint8Array {
  const out = new Uint8Array(8 + framing.overhead + 160 + r.payload.length).fill(0xa5);
  const view = new DataView(out.buffer);
  const source = new DataView(header.buffer, header.byteOffset);
  const length = framing.write(
    out,
    view,
    3,
    source,
    0,
    replyForm(r.requestType),
    r.error,
    r.payload,
  );
  return out.subarray(3, 3 + length);
}

interface Replied {
  readonly requestType: number;
  readonly error: number;
  readonly payload: Uint8Array;
}

describe("reply framing", () => {
  it("stream: a length prefix and the core's encodeReply bytes", () => {
    fc.assert(
      fc.property(request, (r) => {
        const expected = encodeFrame(encodeReply(r.decoded, r.error, r.payload));
        expect([...framed(STREAM_FRAMING, r.header, r)]).toEqual([...expected]);
      }),
    );
  });

  it("connector: encodeConnectorAck for CLEAR_REGION and type 0, encodeConnectorReply otherwise, aligned", () => {
    fc.assert(
      fc.property(request, (r) => {
        const written = framed(connectorFraming(PID), r.header, r);
        expect(written.length % 4).toBe(0);
        const messages = [...connectorMessages(written)];
        expect(messages).toHaveLength(1);
        const ack = replyForm(r.requestType) === "ack";
        expect(isConnectorAck(messages[0]!)).toBe(ack);
        const expected = ack
          ? encodeConnectorAck(r.seq, -r.error, PID)
          : encodeConnectorReply(encodeReply(r.decoded, r.error, r.payload), PID);
        expect([...messages[0]!]).toEqual([...expected]);
      }),
    );
  });

  it("replyForm: a bare ACK for CLEAR_REGION (11) and type 0 in the low byte only", () => {
    expect(replyForm(11)).toBe("ack");
    expect(replyForm(0)).toBe("ack");
    expect(replyForm(0x100 | 11)).toBe("ack");
    for (const type of [1, 2, 9, 10, 12, 17, 18, 255]) expect(replyForm(type)).toBe("full");
  });

  it("connectorBody frames what encodeConnectorRequest wrapped, undecoded", () => {
    const bytes = encodeRequest(makeRequest({ node: 1, luid: 1n, uuid: "u", seq: 9, type: 10 }));
    if (!bytes.ok) throw new Error(bytes.error.message);
    const body = connectorBody(encodeConnectorRequest(bytes.value, 9));
    expect(body.ok && [...(body.value.body ?? [])]).toEqual([...bytes.value]);
    const short = connectorBody(new Uint8Array(20));
    expect(short.ok ? null : short.error.code).toBe("short-netlink");
  });
});
