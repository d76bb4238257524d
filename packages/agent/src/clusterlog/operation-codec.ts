import {
  decodeRequest,
  encodeRequest,
  type NodeId,
  type Operation,
  type ResyncOperation,
} from "@mirrorplane/clusterlog";

// The bytes of one ordered operation on the JetStream bus: a small fixed-layout envelope
// in little-endian (the same on every host, spec pitfall P19) around the unchanged
// `dm_ulog_request` encoding. Membership operations carry the incarnation of the node
// they name, so a late `node-failed` for an earlier run of a node id can be told apart
// from its current run (see membership.ts).

const ENVELOPE_VERSION = 1;
const KIND_REQUEST = 1;
const KIND_IO_DONE = 2;
const KIND_NODE_JOIN = 3;
const KIND_NODE_LEAVE = 4;
const KIND_NODE_FAILED = 5;
/** Operator resync control (issue 5): the ResyncOperation as UTF-8 JSON. */
const KIND_RESYNC = 6;

/** Incarnations are short ASCII tokens (see `newIncarnation`). */
const MAX_INCARNATION = 64;

export interface Envelope {
  /** The member that published it. */
  readonly origin: NodeId;
  readonly op: Operation;
  /** For node-join/leave/failed: the run of the node the operation names ("" = any). */
  readonly incarnation: string;
}

export class EnvelopeError extends Error {}

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const { op, origin, incarnation } = envelope;
  switch (op.kind) {
    case "request": {
      const encoded = encodeRequest(op.request);
      if (!encoded.ok) throw new EnvelopeError(`request not encodable: ${encoded.error.message}`);
      const out = new Uint8Array(10 + encoded.value.length);
      const view = head(out, KIND_REQUEST, origin);
      view.setUint32(6, op.node, true);
      out.set(encoded.value, 10);
      return out;
    }
    case "io-done": {
      const data = op.data ?? null;
      const out = new Uint8Array(19 + (data?.length ?? 0));
      const view = head(out, KIND_IO_DONE, origin);
      view.setFloat64(6, op.ioId, true);
      view.setInt32(14, op.error, true);
      out[18] = data ? 1 : 0;
      if (data) out.set(data, 19);
      return out;
    }
    case "node-join":
    case "node-leave":
    case "node-failed": {
      if (incarnation.length > MAX_INCARNATION || !/^[\x21-\x7e]*$/.test(incarnation)) {
        throw new EnvelopeError("incarnation must be at most 64 printable ASCII characters");
      }
      const kind =
        op.kind === "node-join"
          ? KIND_NODE_JOIN
          : op.kind === "node-leave"
            ? KIND_NODE_LEAVE
            : KIND_NODE_FAILED;
      const out = new Uint8Array(11 + incarnation.length);
      const view = head(out, kind, origin);
      view.setUint32(6, op.node, true);
      out[10] = incarnation.length;
      for (let i = 0; i < incarnation.length; i++) out[11 + i] = incarnation.charCodeAt(i);
      return out;
    }
    case "resync": {
      const json = new TextEncoder().encode(JSON.stringify(op.resync));
      const out = new Uint8Array(6 + json.length);
      head(out, KIND_RESYNC, origin);
      out.set(json, 6);
      return out;
    }
  }
}

function head(out: Uint8Array, kind: number, origin: NodeId): DataView {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out[0] = ENVELOPE_VERSION;
  out[1] = kind;
  view.setUint32(2, origin, true);
  return view;
}

export function decodeEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length < 6) throw new EnvelopeError("envelope shorter than its header");
  if (bytes[0] !== ENVELOPE_VERSION) throw new EnvelopeError(`envelope version ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const kind = bytes[1];
  const origin = view.getUint32(2, true);
  const need = (n: number) => {
    if (bytes.length < n) throw new EnvelopeError(`envelope kind ${kind} truncated`);
  };
  switch (kind) {
    case KIND_REQUEST: {
      need(10);
      const request = decodeRequest(bytes.subarray(10));
      if (!request.ok) throw new EnvelopeError(`bad request: ${request.error.message}`);
      const op: Operation = {
        kind: "request",
        node: view.getUint32(6, true),
        request: request.value,
      };
      return { origin, op, incarnation: "" };
    }
    case KIND_IO_DONE: {
      need(19);
      const ioId = view.getFloat64(6, true);
      const error = view.getInt32(14, true);
      const op: Operation =
        bytes[18] === 1
          ? { kind: "io-done", ioId, error, data: bytes.slice(19) }
          : { kind: "io-done", ioId, error };
      return { origin, op, incarnation: "" };
    }
    case KIND_NODE_JOIN:
    case KIND_NODE_LEAVE:
    case KIND_NODE_FAILED: {
      need(11);
      const length = bytes[10]!;
      need(11 + length);
      let incarnation = "";
      for (let i = 0; i < length; i++) incarnation += String.fromCharCode(bytes[11 + i]!);
      const node = view.getUint32(6, true);
      const op: Operation =
        kind === KIND_NODE_JOIN
          ? { kind: "node-join", node }
          : kind === KIND_NODE_LEAVE
            ? { kind: "node-leave", node }
            : { kind: "node-failed", node };
      return { origin, op, incarnation };
    }
    case KIND_RESYNC: {
      let resync: unknown;
      try {
        resync = JSON.parse(new TextDecoder().decode(bytes.subarray(6)));
      } catch {
        throw new EnvelopeError("bad resync operation");
      }
      const r = resync as { action?: unknown; uuid?: unknown; id?: unknown };
      if (
        typeof r !== "object" ||
        r === null ||
        typeof r.uuid !== "string" ||
        typeof r.id !== "string" ||
        !["start", "cancel", "pause", "unpause", "allow"].includes(r.action as string) ||
        (r.action === "allow" && !validAllowance((r as { regions?: unknown }).regions))
      ) {
        throw new EnvelopeError("bad resync operation");
      }
      return {
        origin,
        op: { kind: "resync", resync: resync as ResyncOperation },
        incarnation: "",
      };
    }
    default:
      throw new EnvelopeError(`unknown envelope kind ${kind}`);
  }
}

/**
 * A NATS subject token for a log UUID. LVM UUIDs (`LVM-<id>`) pass through unchanged;
 * a UUID with characters a subject token cannot hold (or one that looks like our own
 * encoding) is hex-encoded behind the prefix `h_`, so the mapping stays injective.
 */
export function subjectToken(uuid: string): string {
  if (/^[A-Za-z0-9_-]{1,128}$/.test(uuid) && !uuid.startsWith("h_")) return uuid;
  let hex = "h_";
  for (let i = 0; i < uuid.length; i++) hex += uuid.charCodeAt(i).toString(16).padStart(2, "0");
  return hex;
}

/** An `allow` carries a whole number of regions, or null (no limit). */
function validAllowance(regions: unknown): boolean {
  return regions === null || (Number.isInteger(regions) && (regions as number) >= 0);
}
