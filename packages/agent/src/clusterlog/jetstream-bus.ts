import { createHash } from "node:crypto";
import type { NodeId, Operation } from "@mirrorplane/clusterlog";
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type ConnectionOptions, connect, type NatsConnection } from "@nats-io/transport-node";
import type { BusHandlers, BusSnapshot, ClusterBus, OrderedOperation } from "./bus.ts";
import {
  type MemberKeys,
  openEnvelope,
  sealEnvelope,
  signSnapshotMeta,
  verifySnapshotMeta,
} from "./member-keys.ts";
import {
  failureDeclarer,
  type Member,
  MembershipView,
  membershipMsgId,
  newIncarnation,
} from "./membership.ts";
import { decodeEnvelope, encodeEnvelope, subjectToken } from "./operation-codec.ts";

// The ClusterBus over NATS JetStream (ARCHITECTURE.md "The cluster log", spec §4.1, §10).
//
// * One stream per cluster, `MIRRORPLANE_<cluster>`, on subjects `mirrorplane.<cluster>.>`:
//   kernel requests go to `…log.<uuid>` (a subject per log, so an operator can watch or
//   count one log with plain NATS tools), I/O completions to `…io`, membership to
//   `…member`. Replicas consume the whole stream — never a per-log filter — because the
//   state machine is one machine for all logs and membership operations must fall at the
//   same point relative to every log's requests (virtual synchrony, spec §10): the
//   stream sequence is the total order and is the `seq` delivered.
// * Every publication carries a message id (`Nats-Msg-Id`); JetStream drops a repeat
//   within the duplicate window, and answers it with the original sequence (P1, P23).
// * Each member reads with an ordered consumer, which the client re-creates from the
//   last delivered sequence after a reconnect or a NATS server restart.
// * Heartbeats live in a KV bucket whose max age is the failure timeout; a member whose
//   key has expired (or names another run of that node id) is dead. The lowest live
//   member declares it with `node-failed` and message id `failed:<node>:<incarnation>`,
//   so a second declarer's copy collapses into the first.
// * Snapshots live in a second KV bucket, chunked below the NATS payload limit, with the
//   bus's membership view at the snapshot's sequence.
// * Every envelope is signed by its publisher's Ed25519 key and verified by every replica
//   before anything of it is applied (member-keys.ts, issue 15); so is a snapshot's meta,
//   which carries the SHA-256 of its bytes. A refused message is counted, logged, and
//   skipped: its seq is a hole in the order (`BusHandlers.skipped`).

export interface BusLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface JetStreamBusOptions {
  readonly nodeId: NodeId;
  /** NATS server URL(s), e.g. `nats://10.0.0.5:4222`. */
  readonly servers: string | readonly string[];
  /** Names the stream and buckets; [A-Za-z0-9_-]. Default "default". */
  readonly cluster?: string;
  /** A member whose heartbeat is older than this is declared failed. Default 10 s. */
  readonly failureTimeoutMs?: number;
  /** How often a member refreshes its heartbeat and checks the others'. Default timeout/5. */
  readonly heartbeatIntervalMs?: number;
  /** JetStream duplicate window: how long a repeated message id is dropped. Default 10 min. */
  readonly duplicateWindowMs?: number;
  /** Stream and bucket replicas (for a clustered NATS deployment). Default 1. */
  readonly replicas?: number;
  /** Per-attempt publish timeout; publication retries until acknowledged. Default 5 s. */
  readonly publishTimeoutMs?: number;
  /** Snapshot chunk size, below the server's max_payload (1 MiB by default). */
  readonly snapshotChunkBytes?: number;
  /** This run's incarnation token (default: fresh from the clock and a random suffix). */
  readonly incarnation?: string;
  readonly logger?: BusLogger;
  /**
   * Sign what this member publishes and verify what every member published (issue 15).
   * Required unless `insecureUnsigned`: a bus that anyone on NATS can write is a choice.
   */
  readonly memberKeys?: MemberKeys | null;
  /** Publish unsigned envelopes and accept anything (`--insecure-unsigned`). */
  readonly insecureUnsigned?: boolean;
  /** NATS connection options: credentials (authenticator, user/pass) and TLS. */
  readonly connectOptions?: Partial<ConnectionOptions>;
  /** Called for every message refused (the metric). */
  readonly onRefused?: (reason: string) => void;
  /**
   * `close` takes at most this long whatever NATS does (issue 14: a supervisor's stop
   * timeout must not SIGKILL the agent first); what it could not do is logged. Default 800.
   */
  readonly closeTimeoutMs?: number;
}

export class BusError extends Error {}

/** `JetStreamBus.status()`: times are epoch milliseconds. */
export interface JetStreamBusStatus {
  /** The NATS connection is up (false between a disconnect and the reconnect). */
  readonly connected: boolean;
  /** Reconnects since start. */
  readonly reconnects: number;
  /** When the connection was lost, while it is down (null while connected). */
  readonly disconnectedSince: number | null;
  /** The last stream sequence delivered to this member. */
  readonly deliveredSeq: number;
  /** When NATS stored the last operation delivered (the server's clock; null: none yet). */
  readonly lastOrderedAt: number | null;
  /** When this member's heartbeat was last written (null: not yet). */
  readonly heartbeatWrittenAt: number | null;
  /** The member stopped following the order (a gap in the stream: it must restart). */
  readonly failed: boolean;
}

/** What a refused message looked like, for the member's warning line. */
interface Refusal {
  readonly seq: number;
  readonly subject: string;
  readonly msgId: string;
  readonly claimedNode: NodeId | null;
  readonly reason: string;
}

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
const RECENT_IDS = 50_000;

const silentLogger: BusLogger = { info() {}, warn() {}, error() {} };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Names a cluster's stream, subjects and buckets. */
export function jetStreamNames(cluster: string) {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(cluster)) {
    throw new BusError(`cluster name ${JSON.stringify(cluster)}: use 1-64 of [A-Za-z0-9_-]`);
  }
  const prefix = `mirrorplane.${cluster}`;
  return {
    stream: `MIRRORPLANE_${cluster}`,
    subjects: `${prefix}.>`,
    logSubject: (uuid: string) => `${prefix}.log.${subjectToken(uuid)}`,
    ioSubject: `${prefix}.io`,
    memberSubject: `${prefix}.member`,
    heartbeatBucket: `mirrorplane-${cluster}-heartbeat`,
    snapshotBucket: `mirrorplane-${cluster}-snapshot`,
  };
}

export class JetStreamBus implements ClusterBus {
  readonly nodeId: NodeId;
  readonly #opts: Required<
    Omit<
      JetStreamBusOptions,
      | "incarnation"
      | "logger"
      | "servers"
      | "memberKeys"
      | "insecureUnsigned"
      | "connectOptions"
      | "onRefused"
      | "closeTimeoutMs"
    >
  > & {
    servers: string[];
  };
  readonly #names: ReturnType<typeof jetStreamNames>;
  readonly #log: BusLogger;
  #incarnation: string;

  #nc: NatsConnection | null = null;
  #js: JetStreamClient | null = null;
  #jsm: JetStreamManager | null = null;
  #heartbeats: KV | null = null;
  #snapshots: KV | null = null;
  #messages: ConsumerMessages | null = null;
  #handlers: BusHandlers | null = null;

  #view = new MembershipView();
  /** Membership after each change, for the view at a snapshot's sequence. */
  #viewHistory: { seq: number; members: Member[] }[] = [];
  #lastSeq = 0;
  #deadSeen = new Set<NodeId>();
  #recentIds = new Map<string, number>();
  #idWaiters = new Map<string, ((seq: number) => void)[]>();
  #seqWaiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  #declaring = new Set<string>();
  #timer: ReturnType<typeof setInterval> | null = null;
  #ticking = false;
  #quietUntil = 0;
  #joined = false;
  #closing = false;
  #closed = false;
  #fatal: Error | null = null;
  #rejoining = false;
  #consumerGeneration = 0;
  /** Set by a reconnect: the quiet period restarts once our own heartbeat is written. */
  #reconnected = false;
  /** False between a disconnect and the reconnect: nothing published can be acknowledged. */
  #connected = true;
  readonly #closeTimeoutMs: number;
  #stalledTicks = 0;
  #seqAtLastTick = 0;
  /** When our heartbeat was last written (0: not yet). */
  #lastBeatAt = 0;
  /** Connection history and order progress for `status()` (the /metrics gauges, issue 14). */
  #reconnects = 0;
  #disconnectedAt = 0;
  #lastStoredAt = 0;
  #heartbeatWrittenAt = 0;
  readonly #keys: MemberKeys | null;
  /** Refused messages and snapshots (forged, unsigned, unknown signer, replayed). */
  readonly stats = { refused: 0, refusedSnapshots: 0 };
  /** When each refusal reason was last logged, and how many since (one line a minute). */
  readonly #refusalLog = new Map<string, { at: number; suppressed: number }>();

  constructor(options: JetStreamBusOptions) {
    const failureTimeoutMs = options.failureTimeoutMs ?? 10_000;
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 800;
    this.nodeId = options.nodeId;
    if (!Number.isInteger(this.nodeId) || this.nodeId < 0 || this.nodeId > 0xffff_fffe) {
      throw new BusError(`node id ${options.nodeId} is not a u32`);
    }
    this.#opts = {
      nodeId: options.nodeId,
      servers: typeof options.servers === "string" ? [options.servers] : [...options.servers],
      cluster: options.cluster ?? "default",
      failureTimeoutMs,
      heartbeatIntervalMs:
        options.heartbeatIntervalMs ?? Math.max(100, Math.floor(failureTimeoutMs / 5)),
      duplicateWindowMs: options.duplicateWindowMs ?? 10 * 60_000,
      replicas: options.replicas ?? 1,
      publishTimeoutMs: options.publishTimeoutMs ?? 5_000,
      snapshotChunkBytes: options.snapshotChunkBytes ?? 512 * 1024,
    };
    if (this.#opts.heartbeatIntervalMs >= failureTimeoutMs) {
      throw new BusError("heartbeat interval must be shorter than the failure timeout");
    }
    this.#names = jetStreamNames(this.#opts.cluster);
    this.#log = options.logger ?? silentLogger;
    this.#incarnation = options.incarnation ?? newIncarnation(Date.now(), Math.random);
    this.#keys = options.memberKeys ?? null;
    this.#connectOptions = options.connectOptions ?? {};
    this.#onRefused = options.onRefused ?? null;
    if (!this.#keys && !options.insecureUnsigned) {
      throw new BusError(
        "a JetStream member needs its Ed25519 key and the members' public keys " +
          "(--member-key, --member-keys), or --insecure-unsigned",
      );
    }
    if (this.#keys && !this.#keys.privateKey) {
      throw new BusError("memberKeys without this member's private key cannot publish");
    }
  }

  readonly #connectOptions: Partial<ConnectionOptions>;
  readonly #onRefused: ((reason: string) => void) | null;

  /** Whether the NATS connection is up (false between a disconnect and the reconnect). */
  get connected(): boolean {
    return this.#connected && this.#nc !== null && !this.#nc.isClosed();
  }

  /**
   * What a monitor alerts on (issue 14): the connection, how often it was re-established,
   * since when it is down, where this member is in the order and when its heartbeat was
   * last written. Read at scrape time; nothing here costs a request to NATS.
   */
  status(): JetStreamBusStatus {
    const connected = this.connected;
    return {
      connected,
      reconnects: this.#reconnects,
      disconnectedSince: connected || this.#disconnectedAt === 0 ? null : this.#disconnectedAt,
      deliveredSeq: this.#lastSeq,
      lastOrderedAt: this.#lastStoredAt === 0 ? null : this.#lastStoredAt,
      heartbeatWrittenAt: this.#heartbeatWrittenAt === 0 ? null : this.#heartbeatWrittenAt,
      failed: this.#fatal !== null,
    };
  }

  /** This run's incarnation (changes when the member is fenced out and re-joins). */
  get incarnation(): string {
    return this.#incarnation;
  }

  /** The last sequence delivered to this member. */
  get deliveredSeq(): number {
    return this.#lastSeq;
  }

  /** Membership as of the last delivered operation, lowest node first. */
  members(): Member[] {
    return this.#view.members();
  }

  liveMembers(): NodeId[] {
    return this.#view
      .members()
      .map((m) => m.node)
      .filter((n) => n === this.nodeId || !this.#deadSeen.has(n));
  }

  async start(handlers: BusHandlers): Promise<BusSnapshot | null> {
    if (this.#handlers) throw new BusError("bus already started");
    this.#handlers = handlers;
    const nc = await connect({
      // nats.js waits 20 s by default for a connection a server dropped in the TLS
      // handshake (a member without a client certificate): refused sooner, same outcome.
      timeout: 5_000,
      ...this.#connectOptions,
      servers: this.#opts.servers,
      name: `mirrorplane-${this.#opts.cluster}-node-${this.nodeId}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5_000,
    });
    this.#nc = nc;
    this.#js = jetstream(nc, { timeout: this.#opts.publishTimeoutMs });
    this.#jsm = await jetstreamManager(nc, { timeout: this.#opts.publishTimeoutMs });
    await this.#ensureStream();
    const kvm = new Kvm(nc);
    this.#heartbeats = await ensureBucket(kvm, this.#names.heartbeatBucket, {
      history: 1,
      ttl: this.#opts.failureTimeoutMs,
      replicas: this.#opts.replicas,
      storage: StorageType.File,
    });
    this.#snapshots = await ensureBucket(kvm, this.#names.snapshotBucket, {
      history: 1,
      replicas: this.#opts.replicas,
      storage: StorageType.File,
    });
    // Heartbeat first: from the moment our join is ordered, others watch this key.
    await this.#putHeartbeat();

    const loaded = await this.#loadSnapshot();
    const startSeq = loaded?.meta.seq ?? 0;
    this.#view = new MembershipView(loaded?.meta.members ?? []);
    this.#viewHistory = [{ seq: startSeq, members: this.#view.members() }];
    this.#lastSeq = startSeq;
    const snapshot: BusSnapshot | null = loaded ? { seq: startSeq, bytes: loaded.bytes } : null;
    handlers.restore?.(snapshot);

    const info = await this.#jsm.streams.info(this.#names.stream);
    if (info.state.messages > 0 && info.state.first_seq > startSeq + 1) {
      throw new BusError(
        `stream ${this.#names.stream} starts at ${info.state.first_seq}, after snapshot ${startSeq}`,
      );
    }
    await this.#startConsumer();
    void this.#watchStatus(nc);
    await this.#waitSeq(info.state.last_seq);

    // A restarted node id whose previous run is still a member: declare that run failed
    // first (its marks are suspect, spec §4.5), so the new run never inherits them. A
    // survivor may publish the same declaration; the message id collapses the two.
    const previous = this.#view.incarnationOf(this.nodeId);
    if (previous !== undefined && previous !== this.#incarnation) {
      await this.#publishAndWait(
        { kind: "node-failed", node: this.nodeId },
        membershipMsgId.failed(this.nodeId, previous),
        previous,
      );
    }
    await this.#publishAndWait(
      { kind: "node-join", node: this.nodeId },
      membershipMsgId.join(this.nodeId, this.#incarnation),
      this.#incarnation,
    );
    this.#joined = true;
    this.#timer = setInterval(() => void this.#tick(), this.#opts.heartbeatIntervalMs);
    return snapshot;
  }

  async publish(op: Operation, msgId: string): Promise<number> {
    const incarnation =
      op.kind === "node-join" || op.kind === "node-leave" || op.kind === "node-failed"
        ? op.node === this.nodeId
          ? this.#incarnation
          : (this.#view.incarnationOf(op.node) ?? "")
        : "";
    return this.#publish(op, msgId, incarnation);
  }

  async saveSnapshot(snapshot: BusSnapshot): Promise<void> {
    const kv = this.#requireOpen(this.#snapshots);
    if (snapshot.seq > this.#lastSeq) {
      throw new BusError(`snapshot at ${snapshot.seq} is past the delivered ${this.#lastSeq}`);
    }
    const members = this.#viewAt(snapshot.seq);
    const generation = `${snapshot.seq}-${this.nodeId}-${Date.now().toString(36)}`;
    const size = snapshot.bytes.length;
    const chunkBytes = this.#opts.snapshotChunkBytes;
    const chunks = Math.max(1, Math.ceil(size / chunkBytes));
    // Hashed a chunk at a time between the puts, not 16-64 MiB in one turn (issue 15).
    const hash = this.#keys ? createHash("sha256") : null;
    for (let i = 0; i < chunks; i++) {
      const chunk = snapshot.bytes.subarray(i * chunkBytes, Math.min(size, (i + 1) * chunkBytes));
      hash?.update(chunk);
      await kv.put(`chunk.${generation}.${i}`, chunk);
    }
    let meta: SnapshotMeta = { version: 1, seq: snapshot.seq, generation, size, chunks, members };
    if (this.#keys && hash) {
      const sha256 = hash.digest("hex");
      meta = { ...meta, sha256, signer: this.nodeId };
      const sig = signSnapshotMeta(this.#keys.privateKey!, canonicalMeta(this.#opts.cluster, meta));
      meta = { ...meta, sig };
    }
    const encoded = JSON.stringify(meta);
    // Compare-and-set so a slower saver never replaces a newer snapshot with an older one.
    for (;;) {
      const current = await kv.get(SNAPSHOT_KEY);
      const currentMeta =
        current && current.operation === "PUT" ? (current.json() as SnapshotMeta) : null;
      if (currentMeta && currentMeta.seq >= snapshot.seq) {
        await this.#purgeChunks(kv, generation, chunks);
        return;
      }
      try {
        if (current) await kv.update(SNAPSHOT_KEY, encoded, current.revision);
        else await kv.create(SNAPSHOT_KEY, encoded);
      } catch {
        continue; // another member saved meanwhile: look again
      }
      if (currentMeta) await this.#purgeChunks(kv, currentMeta.generation, currentMeta.chunks);
      this.#trimViewHistory(snapshot.seq);
      return;
    }
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#stopTimer();
    const deadline = Date.now() + this.#closeTimeoutMs;
    const left = () => Math.max(0, deadline - Date.now());
    const unreachable = !this.#connected;
    if (this.#joined && this.#nc && !this.#nc.isClosed()) {
      if (unreachable) {
        this.#log.warn(
          { node: this.nodeId },
          "NATS unreachable at shutdown: node-leave not published; the other members declare this one failed after the failure timeout",
        );
      } else {
        try {
          const leave = this.#publishAndWait(
            { kind: "node-leave", node: this.nodeId },
            membershipMsgId.leave(this.nodeId, this.#incarnation),
            this.#incarnation,
          );
          leave.catch(() => {});
          if (
            (await Promise.race([leave.then(() => true), sleep(left()).then(() => false)])) ===
            false
          ) {
            this.#log.warn(
              { node: this.nodeId, waitedMs: this.#closeTimeoutMs },
              "node-leave not acknowledged in time; the other members declare this one failed after the failure timeout",
            );
          }
        } catch (error) {
          this.#log.warn({ err: error }, "could not publish leave");
        }
        try {
          const deleted = this.#heartbeats?.delete(this.#heartbeatKey(this.nodeId));
          deleted?.catch(() => {});
          await Promise.race([deleted, sleep(left())]);
        } catch {
          // the key expires by itself
        }
      }
    }
    await this.#shutdown(unreachable, left());
  }

  /**
   * Drops the connection without leaving, the way a killed process would: no `node-leave`,
   * the heartbeat key is left to expire. For failure tests and benchmarks.
   */
  async abort(): Promise<void> {
    this.#closing = true;
    this.#stopTimer();
    await this.#shutdown(true);
  }

  // ---- delivery ------------------------------------------------------------------------

  /**
   * (Re)creates this member's ordered consumer from the sequence after the last one
   * delivered. The client library also re-creates it after a reconnect, but only once its
   * own checks time out (tens of seconds after a NATS restart); the watchdog in `#tick`
   * calls this when the stream has moved on and we have not.
   */
  async #startConsumer(): Promise<void> {
    const js = this.#requireOpen(this.#js);
    const generation = ++this.#consumerGeneration;
    const previous = this.#messages;
    this.#messages = null;
    try {
      previous?.stop();
    } catch {
      // already stopped
    }
    const consumer = await js.consumers.get(this.#names.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.#lastSeq + 1,
    });
    if (generation !== this.#consumerGeneration || this.#closed) return;
    const messages = await consumer.consume({ max_messages: 512 });
    this.#messages = messages;
    void this.#pump(messages, generation);
  }

  async #pump(messages: ConsumerMessages, generation: number): Promise<void> {
    try {
      for await (const m of messages) {
        if (this.#closed || generation !== this.#consumerGeneration) break;
        this.#onMessage(
          m.seq,
          m.data,
          m.headers?.get("Nats-Msg-Id") || `seq:${m.seq}`,
          m.subject,
          Number(m.timestampNanos / 1_000_000n),
        );
      }
    } catch (error) {
      if (!this.#closed) this.#log.error({ err: error }, "stream consumer ended");
    }
  }

  #onMessage(
    seq: number,
    data: Uint8Array,
    msgId: string,
    subject: string,
    storedAt: number,
  ): void {
    if (seq <= this.#lastSeq || this.#fatal) return; // replayed after a consumer reset
    if (seq !== this.#lastSeq + 1) {
      // Only a purge past our position can do this; the replica can no longer follow.
      this.#fail(new BusError(`gap in the stream: expected ${this.#lastSeq + 1}, got ${seq}`));
      return;
    }
    this.#lastSeq = seq;
    this.#lastStoredAt = storedAt;
    // Nothing of a message is used before its signature is checked (issue 15).
    const opened = openEnvelope(data, {
      cluster: this.#opts.cluster,
      msgId,
      storedAt,
      maxSkewMs: this.#opts.duplicateWindowMs / 2,
      trusted: this.#keys ? this.#keys.trusted : null,
    });
    let envelope: ReturnType<typeof decodeEnvelope> | null = null;
    if (opened.ok) {
      this.#remember(msgId, seq);
      try {
        envelope = decodeEnvelope(opened.envelope);
      } catch (error) {
        this.#log.error({ err: error, seq }, "undecodable operation in the stream");
      }
      if (envelope && opened.signer !== null && envelope.origin !== opened.signer) {
        envelope = null; // cannot happen: the signer is the origin the envelope claims
      }
    } else {
      this.#refuse({ seq, subject, msgId, claimedNode: opened.claimedNode, reason: opened.reason });
      try {
        this.#handlers?.skipped?.(seq);
      } catch (error) {
        this.#log.error({ err: error, seq }, "skipped threw");
      }
    }
    if (envelope) {
      const { op, origin, incarnation } = envelope;
      if (this.#view.apply(op, incarnation)) {
        this.#viewHistory.push({ seq, members: this.#view.members() });
        if (op.kind === "node-join") this.#deadSeen.delete(op.node);
      }
      const entry: OrderedOperation = { seq, origin, msgId, op };
      try {
        this.#handlers?.deliver(entry);
      } catch (error) {
        this.#log.error({ err: error, seq }, "deliver threw");
      }
      if (
        (op.kind === "node-failed" || op.kind === "node-leave") &&
        op.node === this.nodeId &&
        this.#joined &&
        !this.#closing &&
        !this.#view.has(this.nodeId)
      ) {
        void this.#rejoin();
      }
    }
    const waiters = this.#idWaiters.get(msgId);
    if (waiters) {
      this.#idWaiters.delete(msgId);
      for (const w of waiters) w(seq);
    }
    if (this.#seqWaiters.length > 0) {
      const ready = this.#seqWaiters.filter((w) => w.seq <= seq);
      this.#seqWaiters = this.#seqWaiters.filter((w) => w.seq > seq);
      for (const w of ready) w.resolve();
    }
  }

  /** A message no replica may apply: counted, and one warning line per reason a minute. */
  #refuse(refusal: Refusal): void {
    this.stats.refused++;
    this.#onRefused?.(refusal.reason);
    const now = Date.now();
    const last = this.#refusalLog.get(refusal.reason);
    if (last && now - last.at < 60_000) {
      last.suppressed++;
      return;
    }
    this.#refusalLog.set(refusal.reason, { at: now, suppressed: 0 });
    this.#log.warn(
      { ...refusal, ...(last?.suppressed ? { suppressed: last.suppressed } : {}) },
      `refused an operation on ${refusal.subject} claiming node ${refusal.claimedNode ?? "?"}: ${refusal.reason}; not applied`,
    );
  }

  /**
   * We were declared failed (our heartbeat lapsed, e.g. behind a partition) while still
   * running: the replicas have dropped our logs (spec §4.5). Re-join as a new run and let
   * the owner re-publish what it still waits for (P23); its kernel re-constructs.
   */
  async #rejoin(): Promise<void> {
    if (this.#rejoining) return;
    this.#rejoining = true;
    try {
      this.#incarnation = newIncarnation(Date.now(), Math.random);
      this.#log.warn({ incarnation: this.#incarnation }, "fenced out of the cluster; re-joining");
      await this.#putHeartbeat();
      await this.#publishAndWait(
        { kind: "node-join", node: this.nodeId },
        membershipMsgId.join(this.nodeId, this.#incarnation),
        this.#incarnation,
      );
      this.#handlers?.reconnected?.();
    } catch (error) {
      if (!this.#closed) this.#log.error({ err: error }, "re-join failed");
    } finally {
      this.#rejoining = false;
    }
  }

  #remember(msgId: string, seq: number): void {
    this.#recentIds.set(msgId, seq);
    if (this.#recentIds.size > RECENT_IDS) {
      const oldest = this.#recentIds.keys().next().value;
      if (oldest !== undefined) this.#recentIds.delete(oldest);
    }
  }

  #waitSeq(seq: number): Promise<void> {
    if (this.#fatal) return Promise.reject(this.#fatal);
    if (seq <= this.#lastSeq) return Promise.resolve();
    return new Promise((resolve, reject) => this.#seqWaiters.push({ seq, resolve, reject }));
  }

  // ---- publication ---------------------------------------------------------------------

  async #publish(op: Operation, msgId: string, incarnation: string): Promise<number> {
    const js = this.#requireOpen(this.#js);
    const known = this.#recentIds.get(msgId);
    if (known !== undefined) return known; // delivered already: never publish it twice
    const subject =
      op.kind === "request"
        ? this.#names.logSubject(op.request.uuid)
        : op.kind === "io-done"
          ? this.#names.ioSubject
          : this.#names.memberSubject;
    const envelope = encodeEnvelope({ origin: this.nodeId, op, incarnation });
    const keys = this.#keys;
    // Sealed per attempt: a retry long after the first try still carries a fresh time.
    const seal = () =>
      keys
        ? sealEnvelope(keys.privateKey!, this.#opts.cluster, msgId, Date.now(), envelope)
        : envelope;
    let onDelivered: ((seq: number) => void) | null = null;
    const delivered = new Promise<number>((resolve) => {
      onDelivered = resolve;
      const list = this.#idWaiters.get(msgId) ?? [];
      list.push(resolve);
      this.#idWaiters.set(msgId, list);
    });
    let backoff = 50;
    try {
      for (;;) {
        if (this.#closed) throw new BusError("bus closed");
        if (this.#fatal) throw this.#fatal;
        try {
          // A repeat within the duplicate window is acknowledged with the first copy's
          // sequence; a copy that lands while we wait is seen by our own consumer.
          const ack = js
            .publish(subject, seal(), { msgID: msgId, timeout: this.#opts.publishTimeoutMs })
            .then((a) => {
              if (!a.duplicate && a.seq <= this.#lastSeq && this.#recentIds.get(msgId) !== a.seq) {
                // A new message at a sequence we already delivered: the stream went back.
                this.#fail(new BusError(`stream went back: new ${msgId} stored at ${a.seq}`));
              }
              return a.seq;
            });
          return await Promise.race([ack, delivered]);
        } catch (error) {
          if (this.#closed) throw new BusError("bus closed");
          const seen = this.#recentIds.get(msgId);
          if (seen !== undefined) return seen;
          this.#log.warn({ err: error, msgId }, "publish failed; retrying");
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 1_000);
        }
      }
    } finally {
      const list = this.#idWaiters.get(msgId);
      if (list && onDelivered) {
        const rest = list.filter((w) => w !== onDelivered);
        if (rest.length > 0) this.#idWaiters.set(msgId, rest);
        else this.#idWaiters.delete(msgId);
      }
    }
  }

  async #publishAndWait(op: Operation, msgId: string, incarnation: string): Promise<number> {
    const seq = await this.#publish(op, msgId, incarnation);
    await this.#waitSeq(seq);
    return seq;
  }

  // ---- membership and failure detection ------------------------------------------------

  #heartbeatKey(node: NodeId): string {
    return `node.${node}`;
  }

  async #putHeartbeat(): Promise<void> {
    await this.#heartbeats?.put(this.#heartbeatKey(this.nodeId), this.#incarnation);
    this.#heartbeatWrittenAt = Date.now();
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#closing) return;
    this.#ticking = true;
    try {
      await this.#putHeartbeat();
      const now = Date.now();
      if (this.#lastBeatAt > 0 && now - this.#lastBeatAt > 2 * this.#opts.heartbeatIntervalMs) {
        // We ourselves were held up (a long pause of this process, a starved machine, a
        // publish retried across a NATS hiccup): the others' heartbeats may have lapsed for
        // the same reason, since agents sharing a host or a network stall together. Judge
        // no one until every member has had one full timeout from now to refresh.
        this.#quietUntil = Math.max(this.#quietUntil, now + this.#opts.failureTimeoutMs);
        this.#log.warn(
          { gapMs: now - this.#lastBeatAt },
          "heartbeat was late: no failure declared for one timeout",
        );
      }
      this.#lastBeatAt = now;
      if (this.#reconnected) {
        // Our heartbeat is written again, so the others' can be too: give every member
        // one full timeout from now before anyone is declared failed.
        this.#reconnected = false;
        this.#quietUntil = Date.now() + this.#opts.failureTimeoutMs;
      }
      await this.#watchdog();
      const kv = this.#heartbeats;
      if (!kv || !this.#joined || Date.now() < this.#quietUntil) return;
      const members = this.#view.members();
      const dead = new Set<NodeId>();
      for (const m of members) {
        if (m.node === this.nodeId) continue;
        const entry = await kv.get(this.#heartbeatKey(m.node));
        const beat = entry && entry.operation === "PUT" ? entry.string() : null;
        if (beat !== m.incarnation) dead.add(m.node);
      }
      this.#deadSeen = dead;
      if (dead.size === 0 || this.#closing) return;
      if (failureDeclarer(members, dead) !== this.nodeId) return;
      for (const node of dead) {
        const incarnation = this.#view.incarnationOf(node);
        if (incarnation === undefined) continue;
        const msgId = membershipMsgId.failed(node, incarnation);
        if (this.#declaring.has(msgId)) continue;
        this.#declaring.add(msgId);
        this.#log.warn({ node, incarnation }, "heartbeat expired: declaring member failed");
        this.#publish({ kind: "node-failed", node }, msgId, incarnation)
          .catch((error) => {
            if (!this.#closed) this.#log.error({ err: error, node }, "could not declare failure");
          })
          .finally(() => this.#declaring.delete(msgId));
      }
    } catch (error) {
      if (!this.#closed) this.#log.warn({ err: error }, "heartbeat round failed");
    } finally {
      this.#ticking = false;
    }
  }

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") {
        if (this.#connected) this.#disconnectedAt = Date.now();
        this.#connected = false;
        this.#log.warn({ server: status.server }, "disconnected from NATS");
      } else if (status.type === "reconnect") {
        // Others may have been cut off as long as we were: give every member one full
        // timeout to refresh its heartbeat before anyone is declared failed.
        this.#reconnected = true;
        this.#connected = true;
        this.#reconnects++;
        this.#quietUntil = Number.POSITIVE_INFINITY;
        this.#log.info({ server: status.server }, "reconnected to NATS");
        void this.#refreshAfterReconnect();
        // Publications in flight are retried by `publish` itself; the owner re-publishes
        // whatever else it still waits for (P23). Message ids make both harmless.
        if (this.#joined && !this.#closing) this.#handlers?.reconnected?.();
      }
    }
  }

  /**
   * Writes our heartbeat as soon as the server takes it again, without waiting for a tick
   * that may still hang on a request sent before the disconnect: the others' quiet period
   * starts when *their* heartbeat is written, so ours must not lag behind it.
   */
  async #refreshAfterReconnect(): Promise<void> {
    for (let attempt = 0; attempt < 20 && !this.#closing; attempt++) {
      try {
        await this.#putHeartbeat();
        return;
      } catch {
        await sleep(Math.min(this.#opts.heartbeatIntervalMs, 100));
      }
    }
  }

  /**
   * Compares our position with the stream's: behind with no progress for two rounds →
   * re-create the consumer; the stream *behind us* → it lost acknowledged operations (a
   * single, unreplicated NATS server killed before writing them out), which no replica
   * can recover from, so stop rather than diverge.
   */
  async #watchdog(): Promise<void> {
    const jsm = this.#jsm;
    if (!jsm || this.#fatal) return;
    // Compare with what was delivered *before* asking: deliveries go on meanwhile.
    const deliveredBefore = this.#lastSeq;
    const info = await jsm.streams.info(this.#names.stream);
    const last = info.state.last_seq;
    if (last < deliveredBefore) {
      this.#fail(
        new BusError(
          `stream ${this.#names.stream} is at ${last} but ${deliveredBefore} were delivered: ` +
            "the NATS server lost acknowledged operations (use a replicated stream)",
        ),
      );
      return;
    }
    const progressed = deliveredBefore !== this.#seqAtLastTick;
    this.#seqAtLastTick = deliveredBefore;
    if (last > this.#lastSeq && !progressed) this.#stalledTicks++;
    else this.#stalledTicks = 0;
    if (this.#stalledTicks >= 2) {
      this.#stalledTicks = 0;
      this.#log.warn({ at: this.#lastSeq, streamAt: last }, "consumer stalled; re-creating it");
      await this.#startConsumer();
    }
  }

  // ---- snapshots -----------------------------------------------------------------------

  async #loadSnapshot(): Promise<{ meta: SnapshotMeta; bytes: Uint8Array } | null> {
    const kv = this.#requireOpen(this.#snapshots);
    for (let attempt = 0; attempt < 10; attempt++) {
      const entry = await kv.get(SNAPSHOT_KEY);
      if (entry?.operation !== "PUT") return null;
      const meta = entry.json() as SnapshotMeta;
      const bytes = new Uint8Array(meta.size);
      let complete = true;
      for (let i = 0; i < meta.chunks && complete; i++) {
        const chunk = await kv.get(`chunk.${meta.generation}.${i}`);
        if (chunk?.operation !== "PUT") complete = false;
        else bytes.set(chunk.value, i * this.#opts.snapshotChunkBytes);
      }
      if (complete) {
        const refused = this.#snapshotRefusal(meta, bytes);
        if (refused) {
          this.stats.refusedSnapshots++;
          this.#onRefused?.(`snapshot: ${refused}`);
          this.#log.warn(
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

  /** Why a loaded snapshot may not be used (null: it may). */
  #snapshotRefusal(meta: SnapshotMeta, bytes: Uint8Array): string | null {
    if (!this.#keys) return null;
    if (meta.sig === undefined || meta.signer === undefined || meta.sha256 === undefined) {
      return "unsigned snapshot";
    }
    if (!this.#keys.trusted.has(meta.signer)) return "unknown signer";
    const canonical = canonicalMeta(this.#opts.cluster, meta);
    if (!verifySnapshotMeta(this.#keys.trusted, meta.signer, canonical, meta.sig)) {
      return "bad signature";
    }
    if (createHash("sha256").update(bytes).digest("hex") !== meta.sha256) {
      return "bytes do not match the signed digest";
    }
    return null;
  }

  async #purgeChunks(kv: KV, generation: string, chunks: number): Promise<void> {
    for (let i = 0; i < chunks; i++) {
      try {
        await kv.purge(`chunk.${generation}.${i}`);
      } catch {
        // best effort: an orphaned chunk wastes space, nothing else
      }
    }
  }

  #viewAt(seq: number): Member[] {
    let found: Member[] | null = null;
    for (const h of this.#viewHistory) {
      if (h.seq <= seq) found = h.members;
      else break;
    }
    if (!found) throw new BusError(`no membership known at ${seq}`);
    return found;
  }

  #trimViewHistory(seq: number): void {
    let keepFrom = 0;
    for (let i = 0; i < this.#viewHistory.length; i++) {
      if (this.#viewHistory[i]!.seq <= seq) keepFrom = i;
    }
    this.#viewHistory = this.#viewHistory.slice(keepFrom);
  }

  // ---- plumbing ------------------------------------------------------------------------

  async #ensureStream(): Promise<void> {
    const jsm = this.#requireOpen(this.#jsm);
    const config = {
      name: this.#names.stream,
      subjects: [this.#names.subjects],
      storage: StorageType.File,
      num_replicas: this.#opts.replicas,
      duplicate_window: this.#opts.duplicateWindowMs * 1_000_000,
    };
    try {
      await jsm.streams.info(this.#names.stream);
    } catch {
      try {
        await jsm.streams.add(config);
      } catch (error) {
        // Another member created it first; use theirs (same name = same cluster).
        await jsm.streams.info(this.#names.stream).catch(() => {
          throw error;
        });
      }
    }
  }

  #requireOpen<T>(value: T | null): T {
    if (this.#closed) throw new BusError("bus closed");
    if (value === null) throw new BusError("bus not started");
    return value;
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #fail(error: Error): void {
    this.#fatal = error;
    this.#log.error({ err: error }, "cluster bus stopped");
    for (const w of this.#seqWaiters) w.reject(error);
    this.#seqWaiters = [];
  }

  async #shutdown(abrupt: boolean, drainMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimer();
    const stopped = new BusError("bus closed");
    for (const w of this.#seqWaiters) w.reject(stopped);
    this.#seqWaiters = [];
    try {
      this.#messages?.stop();
    } catch {
      // already stopped
    }
    const nc = this.#nc;
    if (nc && !nc.isClosed()) {
      if (abrupt) await nc.close().catch(() => {});
      else {
        const drained = nc.drain().then(
          () => true,
          () => false,
        );
        if (!(await Promise.race([drained, sleep(drainMs).then(() => false)]))) {
          // NATS went away or is slow: close without waiting for it.
          if (drainMs !== Number.POSITIVE_INFINITY) {
            this.#log.warn({ waitedMs: drainMs }, "NATS drain did not finish: connection closed");
          }
          await Promise.race([nc.close().catch(() => {}), sleep(100)]);
        }
      }
    }
  }
}

async function ensureBucket(
  kvm: Kvm,
  name: string,
  opts: { history: number; ttl?: number; replicas: number; storage: StorageType },
): Promise<KV> {
  try {
    return await kvm.create(name, opts);
  } catch (error) {
    // Exists with another configuration (e.g. another member's timeout): use it as is.
    return await kvm.open(name).catch(() => {
      throw error;
    });
  }
}
