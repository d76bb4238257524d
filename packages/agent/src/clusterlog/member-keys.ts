import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { chmod, mkdir, readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NodeId } from "@mirrorplane/clusterlog";

// Who may write the replicated log (issue 15, hole 2): anyone who could publish on NATS
// could forge an operation (a plain publish of SET_REGION_SYNC flipped IN_SYNC). Every
// envelope is now signed by the member that published it, with its Ed25519 key
// (node:crypto; no crypto of our own), and every replica verifies it against the public
// key it trusts for the node id the envelope claims before applying anything.
//
// A sealed message on the stream:
//
//     0x53 'S' | u8 version 1 | f64 LE publish time (ms since the epoch) | 64-byte signature
//            | the envelope (operation-codec.ts, starting with its version byte 1)
//
// and the signature covers `"mirrorplane-op/1\n" cluster "\n" msgId "\n" time "\n"`
// followed by the envelope: an operation cannot be moved to another cluster, given another
// message id (JetStream drops a repeated id within its duplicate window), or replayed
// later — a replica refuses a publish time further than half the duplicate window from the
// time JetStream stored the message, so a replay outside the window is refused and one
// inside it is dropped by JetStream as a duplicate.
//
// Keys on disk: the private key as PKCS#8 PEM (mode 0600), public keys as SPKI PEM. The
// trusted keys are a directory of `<node id>.pub` files, or one JSON file
// `{ "<node id>": "<PEM>" }`.

export const SEALED = 0x53;
const SEAL_VERSION = 1;
export const SEAL_HEADER = 2 + 8 + 64;
const DOMAIN = "mirrorplane-op/1\n";

export class MemberKeyError extends Error {}

export interface MemberKeys {
  /** This member's private key (absent on a verify-only member, e.g. a tool). */
  readonly privateKey?: KeyObject;
  /** The public key trusted for each node id (this member's own included). */
  readonly trusted: ReadonlyMap<NodeId, KeyObject>;
}

export interface KeyPairPem {
  readonly privatePem: string;
  readonly publicPem: string;
}

export function generateMemberKeyPair(): KeyPairPem {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** `mirrorplane-agent keygen`: `<dir>/<node>.key` (0600) and `<dir>/<node>.pub`. */
export async function writeMemberKeyPair(
  dir: string,
  node: NodeId,
): Promise<{ privatePath: string; publicPath: string }> {
  await mkdir(dir, { recursive: true });
  const pair = generateMemberKeyPair();
  const privatePath = join(dir, `${node}.key`);
  const publicPath = join(dir, `${node}.pub`);
  await writeFile(privatePath, pair.privatePem, { mode: 0o600, flag: "wx" });
  await chmod(privatePath, 0o600);
  await writeFile(publicPath, pair.publicPem, { mode: 0o644, flag: "wx" });
  return { privatePath, publicPath };
}

function ed25519(key: KeyObject, what: string): KeyObject {
  if (key.asymmetricKeyType !== "ed25519") {
    throw new MemberKeyError(`${what} is a ${key.asymmetricKeyType} key, not Ed25519`);
  }
  return key;
}

/** This member's private key; refused when group or others may read the file. */
export async function loadPrivateKey(path: string): Promise<KeyObject> {
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new MemberKeyError(
      `${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}): chmod 600 it`,
    );
  }
  return ed25519(createPrivateKey(await readFile(path)), path);
}

/** The trusted public keys: a directory of `<node>.pub`, or a JSON file of node → PEM. */
export async function loadTrustedKeys(path: string): Promise<Map<NodeId, KeyObject>> {
  const trusted = new Map<NodeId, KeyObject>();
  const add = (node: string, pem: string | Buffer, from: string) => {
    const id = Number(node);
    if (!Number.isInteger(id) || id < 1 || id > 0xffff_fffe) {
      throw new MemberKeyError(`${from}: ${JSON.stringify(node)} is not a node id`);
    }
    trusted.set(id, ed25519(createPublicKey(pem), from));
  };
  if ((await stat(path)).isDirectory()) {
    for (const name of (await readdir(path)).sort()) {
      const m = /^(\d+)\.pub$/.exec(name);
      if (m) add(m[1]!, await readFile(join(path, name)), join(path, name));
    }
  } else {
    const parsed = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    for (const [node, pem] of Object.entries(parsed)) {
      if (typeof pem !== "string") throw new MemberKeyError(`${path}: key of ${node} is not PEM`);
      add(node, pem, path);
    }
  }
  if (trusted.size === 0) throw new MemberKeyError(`${path} holds no <node id>.pub key`);
  return trusted;
}

/** This member's keys; its own public key must be among the trusted ones and match. */
export async function loadMemberKeys(
  node: NodeId,
  privatePath: string,
  trustedPath: string,
): Promise<MemberKeys> {
  const privateKey = await loadPrivateKey(privatePath);
  const trusted = await loadTrustedKeys(trustedPath);
  const own = trusted.get(node);
  const derived = createPublicKey(privateKey).export({ type: "spki", format: "der" });
  if (!own?.export({ type: "spki", format: "der" }).equals(derived)) {
    throw new MemberKeyError(
      `the trusted keys in ${trustedPath} do not hold node ${node}'s public key for ${privatePath}`,
    );
  }
  return { privateKey, trusted };
}

function signedBytes(cluster: string, msgId: string, time: number, envelope: Uint8Array): Buffer {
  const head = Buffer.from(`${DOMAIN}${cluster}\n${msgId}\n${time}\n`, "utf8");
  const out = Buffer.allocUnsafe(head.length + envelope.length);
  head.copy(out, 0);
  out.set(envelope, head.length);
  return out;
}

/** The envelope sealed by `privateKey` for `msgId` at `time` (ms). */
export function sealEnvelope(
  privateKey: KeyObject,
  cluster: string,
  msgId: string,
  time: number,
  envelope: Uint8Array,
): Uint8Array {
  const signature = sign(null, signedBytes(cluster, msgId, time, envelope), privateKey);
  const out = new Uint8Array(SEAL_HEADER + envelope.length);
  const view = new DataView(out.buffer);
  out[0] = SEALED;
  out[1] = SEAL_VERSION;
  view.setFloat64(2, time, true);
  out.set(signature, 10);
  out.set(envelope, SEAL_HEADER);
  return out;
}

export type Opened =
  | { readonly ok: true; readonly envelope: Uint8Array; readonly signer: NodeId | null }
  | { readonly ok: false; readonly reason: string; readonly claimedNode: NodeId | null };

/** The origin an envelope claims (its bytes 2..5), if it has that many. */
function claimedOrigin(envelope: Uint8Array): NodeId | null {
  if (envelope.length < 6) return null;
  return new DataView(envelope.buffer, envelope.byteOffset, 6).getUint32(2, true);
}

export interface OpenOptions {
  readonly cluster: string;
  readonly msgId: string;
  /** When JetStream stored the message (ms). */
  readonly storedAt: number;
  /** A publish time further than this from `storedAt` is refused (replay). */
  readonly maxSkewMs: number;
  /** null: unsigned envelopes accepted, signatures not checked (`--insecure-unsigned`). */
  readonly trusted: ReadonlyMap<NodeId, KeyObject> | null;
}

/**
 * The envelope of a stream message, once its signature is checked against the key
 * trusted for the node it claims as origin; or why it is refused.
 */
export function openEnvelope(data: Uint8Array, options: OpenOptions): Opened {
  if (data[0] !== SEALED) {
    if (options.trusted === null) return { ok: true, envelope: data, signer: null };
    return { ok: false, reason: "unsigned operation", claimedNode: claimedOrigin(data) };
  }
  if (data.length < SEAL_HEADER + 6 || data[1] !== SEAL_VERSION) {
    return { ok: false, reason: "malformed signed operation", claimedNode: null };
  }
  const envelope = data.subarray(SEAL_HEADER);
  const claimed = claimedOrigin(envelope);
  if (options.trusted === null) return { ok: true, envelope, signer: null };
  const key = claimed === null ? undefined : options.trusted.get(claimed);
  if (!key) return { ok: false, reason: "unknown signer", claimedNode: claimed };
  const time = new DataView(data.buffer, data.byteOffset + 2, 8).getFloat64(0, true);
  if (!(Math.abs(time - options.storedAt) <= options.maxSkewMs)) {
    return {
      ok: false,
      reason: "publish time outside the duplicate window (replayed, or clocks apart)",
      claimedNode: claimed,
    };
  }
  const signature = data.subarray(10, SEAL_HEADER);
  const ok = verify(
    null,
    signedBytes(options.cluster, options.msgId, time, envelope),
    key,
    signature,
  );
  if (!ok) return { ok: false, reason: "bad signature", claimedNode: claimed };
  return { ok: true, envelope, signer: claimed };
}

/** A snapshot's meta is signed over its canonical JSON (the fields in a fixed order). */
export function signSnapshotMeta(privateKey: KeyObject, canonical: string): string {
  return sign(null, Buffer.from(`mirrorplane-snapshot/1\n${canonical}`), privateKey).toString(
    "base64",
  );
}

export function verifySnapshotMeta(
  trusted: ReadonlyMap<NodeId, KeyObject>,
  signer: NodeId,
  canonical: string,
  signature: string,
): boolean {
  const key = trusted.get(signer);
  if (!key) return false;
  return verify(
    null,
    Buffer.from(`mirrorplane-snapshot/1\n${canonical}`),
    key,
    Buffer.from(signature, "base64"),
  );
}

/**
 * Keys for a cluster that lives in one process or one test run (the demo, tests,
 * benchmarks): a fresh pair per node, every public key trusted by every node.
 */
export function ephemeralClusterKeys(nodes: readonly NodeId[]): Map<NodeId, MemberKeys> {
  const pairs = nodes.map((node) => ({ node, ...generateKeyPairSync("ed25519") }));
  const trusted = new Map<NodeId, KeyObject>(pairs.map((p) => [p.node, p.publicKey]));
  return new Map(pairs.map((p) => [p.node, { privateKey: p.privateKey, trusted }]));
}
