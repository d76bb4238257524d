import { createHash } from "node:crypto";
import type { NodeId } from "@mirrorplane/clusterlog";
import type { KV } from "@nats-io/kv";
import type { BusSnapshot } from "./bus.ts";
import { BusError, type BusLogger, type RefusalStats } from "./jetstream-common.ts";
import { type MemberKeys, signSnapshotMeta, verifySnapshotMeta } from "./member-keys.ts";
import type { Member } from "./membership.ts";

// The JetStream bus's snapshot store: the latest snapshot in a KV bucket, chunked below the
// NATS payload limit, with the bus's membership view at the snapshot's sequence; its meta
// is signed (the SHA-256 of its bytes included) and verified before a joiner uses it.

interface SnapshotMeta {
  readonly version: 1;
  readonly seq: number;
  readonly generation: string;
  readonly size: number;
  readonly chunks: number;
  readonly members: Member[];
  /** SHA-256 (hex) of the snapshot bytes, the node that signed this meta, and its signature. */
  readonly sha256?: string;
  readonly signer?: NodeId;
  readonly sig?: string;
}

/** A snapshot read back from the bucket. */
export interface LoadedSnapshot {
  readonly meta: SnapshotMeta;
  readonly bytes: Uint8Array;
}

/** The meta fields a snapshot's signature covers, in a fixed order. */
function canonicalMeta(cluster: string, meta: SnapshotMeta): string {
  return JSON.stringify([
    cluster,
    meta.version,
    meta.seq,
    meta.generation,
    meta.size,
    meta.chunks,
    meta.members,
    meta.sha256 ?? null,
    meta.signer ?? null,
  ]);
}

const SNAPSHOT_KEY = "latest";

/** Membership after each change, for the view at a snapshot's sequence. */
export class MembershipHistory {
  #entries: { seq: number; members: Member[] }[] = [];

  /** Starts over from the membership at `seq` (the snapshot `start` begins from). */
  reset(seq: number, members: Member[]): void {
    this.#entries = [{ seq, members }];
  }

  /** Membership changed at `seq`. */
  record(seq: number, members: Member[]): void {
    this.#entries.push({ seq, members });
  }

  at(seq: number): Member[] {
    let found: Member[] | null = null;
    for (const h of this.#entries) {
      if (h.seq <= seq) found = h.members;
      else break;
    }
    if (!found) throw new BusError(`no membership known at ${seq}`);
    return found;
  }

  /** Forgets what no snapshot after `seq` can ask for. */
  trim(seq: number): void {
    let keepFrom = 0;
    for (let i = 0; i < this.#entries.length; i++) {
      if (this.#entries[i]!.seq <= seq) keepFrom = i;
    }
    this.#entries = this.#entries.slice(keepFrom);
  }
}

export interface SnapshotStoreOptions {
  readonly cluster: string;
  readonly nodeId: NodeId;
  readonly chunkBytes: number;
  readonly keys: MemberKeys | null;
  readonly log: BusLogger;
  /** The bus's counters (`refusedSnapshots` is counted here). */
  readonly stats: RefusalStats;
  readonly onRefused: ((reason: string) => void) | null;
}

export class SnapshotStore {
  readonly #kv: KV;
  readonly #o: SnapshotStoreOptions;

  constructor(kv: KV, options: SnapshotStoreOptions) {
    this.#kv = kv;
    this.#o = options;
  }

  /** The latest snapshot, or null: none saved, or refused (then the stream is replayed). */
  async load(): Promise<LoadedSnapshot | null> {
    const kv = this.#kv;
    for (let attempt = 0; attempt < 10; attempt++) {
      const entry = await kv.get(SNAPSHOT_KEY);
      if (entry?.operation !== "PUT") return null;
      const meta = entry.json() as SnapshotMeta;
      const bytes = new Uint8Array(meta.size);
      let complete = true;
      for (let i = 0; i < meta.chunks && complete; i++) {
        const chunk = await kv.get(`chunk.${meta.generation}.${i}`);
        if (chunk?.operation !== "PUT") complete = false;
        else bytes.set(chunk.value, i * this.#o.chunkBytes);
      }
      if (complete) {
        const refused = this.#refusal(meta, bytes);
        if (refused) {
          this.#o.stats.refusedSnapshots++;
          this.#o.onRefused?.(`snapshot: ${refused}`);
          this.#o.log.warn(
            { seq: meta.seq, signer: meta.signer ?? null, reason: refused },
            `refused the cluster's snapshot at ${meta.seq}: ${refused}; replaying the stream instead`,
          );
          return null;
        }
        return { meta, bytes };
      }
      // A newer snapshot replaced this one while we read it: read the newer one.
    }
    throw new BusError("could not read a consistent snapshot");
  }

  /**
   * Writes `snapshot` with `members` (the view at its sequence) unless the bucket already
   * holds one at or after its sequence. True: it is the latest now.
   */
  async save(snapshot: BusSnapshot, members: Member[]): Promise<boolean> {
    const kv = this.#kv;
    const keys = this.#o.keys;
    const generation = `${snapshot.seq}-${this.#o.nodeId}-${Date.now().toString(36)}`;
    const size = snapshot.bytes.length;
    const chunkBytes = this.#o.chunkBytes;
    const chunks = Math.max(1, Math.ceil(size / chunkBytes));
    // Hashed a chunk at a time between the puts, not 16-64 MiB in one turn (issue 15).
    const hash = keys ? createHash("sha256") : null;
    for (let i = 0; i < chunks; i++) {
      const chunk = snapshot.bytes.subarray(i * chunkBytes, Math.min(size, (i + 1) * chunkBytes));
      hash?.update(chunk);
      await kv.put(`chunk.${generation}.${i}`, chunk);
    }
    let meta: SnapshotMeta = { version: 1, seq: snapshot.seq, generation, size, chunks, members };
    if (keys && hash) {
      const sha256 = hash.digest("hex");
      meta = { ...meta, sha256, signer: this.#o.nodeId };
      const sig = signSnapshotMeta(keys.privateKey!, canonicalMeta(this.#o.cluster, meta));
      meta = { ...meta, sig };
    }
    const encoded = JSON.stringify(meta);
    // Compare-and-set so a slower saver never replaces a newer snapshot with an older one.
    for (;;) {
      const current = await kv.get(SNAPSHOT_KEY);
      const currentMeta =
        current && current.operation === "PUT" ? (current.json() as SnapshotMeta) : null;
      if (currentMeta && currentMeta.seq >= snapshot.seq) {
        await this.#purgeChunks(generation, chunks);
        return false;
      }
      try {
        if (current) await kv.update(SNAPSHOT_KEY, encoded, current.revision);
        else await kv.create(SNAPSHOT_KEY, encoded);
      } catch {
        continue; // another member saved meanwhile: look again
      }
      if (currentMeta) await this.#purgeChunks(currentMeta.generation, currentMeta.chunks);
      return true;
    }
  }

  /** Why a loaded snapshot may not be used (null: it may). */
  #refusal(meta: SnapshotMeta, bytes: Uint8Array): string | null {
    const keys = this.#o.keys;
    if (!keys) return null;
    if (meta.sig === undefined || meta.signer === undefined || meta.sha256 === undefined) {
      return "unsigned snapshot";
    }
    if (!keys.trusted.has(meta.signer)) return "unknown signer";
    const canonical = canonicalMeta(this.#o.cluster, meta);
    if (!verifySnapshotMeta(keys.trusted, meta.signer, canonical, meta.sig)) {
      return "bad signature";
    }
    if (createHash("sha256").update(bytes).digest("hex") !== meta.sha256) {
      return "bytes do not match the signed digest";
    }
    return null;
  }

  async #purgeChunks(generation: string, chunks: number): Promise<void> {
    for (let i = 0; i < chunks; i++) {
      try {
        await this.#kv.purge(`chunk.${generation}.${i}`);
      } catch {
        // best effort: an orphaned chunk wastes space, nothing else
      }
    }
  }
}
