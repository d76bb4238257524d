import { makeRequest, type Operation } from "@mirrorplane/clusterlog";
import { describe, expect, it } from "vitest";
import { decodeEnvelope, EnvelopeError, encodeEnvelope, subjectToken } from "./operation-codec.ts";

describe("operation envelope", () => {
  const cases: [Operation, string][] = [
    [
      {
        kind: "request",
        node: 7,
        request: makeRequest({
          node: 7,
          type: 10,
          uuid: "LVM-abc",
          luid: 0xffff_8880_1234_5678n,
          seq: 42,
          data: new Uint8Array([5, 0, 0, 0, 0, 0, 0, 0]),
        }),
      },
      "",
    ],
    [{ kind: "io-done", ioId: 2 ** 40 + 3, error: -5 }, ""],
    [{ kind: "io-done", ioId: 9, error: 0, data: new Uint8Array([1, 2, 3]) }, ""],
    [{ kind: "node-join", node: 4 }, "m1-abc123"],
    [{ kind: "node-leave", node: 4 }, "m1-abc123"],
    [{ kind: "node-failed", node: 0xffff_fffe }, ""],
  ];
  it.each(cases)("round-trips %o", (op, incarnation) => {
    const decoded = decodeEnvelope(encodeEnvelope({ origin: 3, op, incarnation }));
    expect(decoded).toEqual({ origin: 3, op, incarnation });
  });

  it("rejects truncated and unknown envelopes", () => {
    const bytes = encodeEnvelope({
      origin: 1,
      op: { kind: "node-join", node: 2 },
      incarnation: "abc",
    });
    expect(() => decodeEnvelope(bytes.subarray(0, bytes.length - 1))).toThrow(EnvelopeError);
    expect(() => decodeEnvelope(new Uint8Array([1, 99, 0, 0, 0, 0]))).toThrow(EnvelopeError);
    expect(() => decodeEnvelope(new Uint8Array([2, 3, 0, 0, 0, 0]))).toThrow(EnvelopeError);
  });

  it("maps log UUIDs to distinct subject tokens", () => {
    expect(subjectToken("LVM-Zx81")).toBe("LVM-Zx81");
    expect(subjectToken("a.b")).toBe("h_612e62");
    expect(subjectToken("h_612e62")).not.toBe(subjectToken("a.b"));
  });
});
