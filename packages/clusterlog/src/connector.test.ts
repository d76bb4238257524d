import { describe, expect, it } from "vitest";
import { encodeReply, encodeRequest, encodeU64List } from "./codec.ts";
import {
  decodeConnectorMessage,
  encodeConnectorAck,
  encodeConnectorReply,
  encodeConnectorRequest,
} from "./connector.ts";
import { DM_ULOG_CLEAR_REGION, DM_ULOG_MARK_REGION } from "./request-types.ts";

const request = {
  luid: 0xffff_8880_1234_5678n,
  uuid: "LVM-test",
  version: 3,
  error: 0,
  seq: 42,
  requestType: DM_ULOG_MARK_REGION,
  data: encodeU64List([5, 9]),
};

function u32(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true);
}
function u16(bytes: Uint8Array, at: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset).getUint16(at, true);
}

describe("netlink connector framing", () => {
  it("scenario 1: request has cn_msg.len 176; the reply is a 196-byte message", () => {
    const enc = encodeRequest(request);
    if (!enc.ok) throw new Error("encode");
    const msg = encodeConnectorRequest(enc.value, 42);
    expect(u16(msg, 16 + 16)).toBe(176);
    const decoded = decodeConnectorMessage(msg);
    expect(decoded).toMatchObject({ ok: true, value: { cn: { seq: 42 }, request: { seq: 42 } } });

    const reply = encodeConnectorReply(encodeReply(request, 0, new Uint8Array(0)), 1234);
    expect(reply.length).toBe(196);
    expect(u32(reply, 0)).toBe(196); // nlmsg_len
    expect(u16(reply, 4)).toBe(3); // NLMSG_DONE
    expect(u32(reply, 12)).toBe(1234); // own pid
    expect([u32(reply, 16), u32(reply, 20), u32(reply, 24), u32(reply, 28)]).toEqual([7, 1, 0, 0]);
    expect(u16(reply, 32)).toBe(160);
    expect(u32(reply, 36 + 148)).toBe(42); // header seq
    expect(u32(reply, 36 + 144)).toBe(0); // error
    expect(u32(reply, 36 + 156)).toBe(0); // data_size
  });

  it("scenario 12: CLEAR ack is a 0-length cn_msg carrying the request seq", () => {
    const ack = encodeConnectorAck(77, 0, 1);
    expect(ack.length).toBe(36);
    expect(u32(ack, 24)).toBe(77);
    expect(u32(ack, 28)).toBe(0);
    expect(u16(ack, 32)).toBe(0);
    expect(decodeConnectorMessage(ack)).toMatchObject({ ok: true, value: { request: null } });
    expect(DM_ULOG_CLEAR_REGION).toBe(11);
  });

  it("drops incomplete messages and foreign connector ids", () => {
    const msg = encodeConnectorRequest(new Uint8Array(160), 1);
    const short = msg.slice();
    new DataView(short.buffer).setUint16(32, 100, true);
    expect(decodeConnectorMessage(short)).toMatchObject({ error: { code: "incomplete-message" } });
    const foreign = msg.slice();
    foreign[16] = 9;
    expect(decodeConnectorMessage(foreign)).toMatchObject({ error: { code: "not-dm-log" } });
    expect(decodeConnectorMessage(msg.subarray(0, 20))).toMatchObject({
      error: { code: "short-netlink" },
    });
  });
});
