import type { NodeId, Operation } from "@mirrorplane/clusterlog";
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { type ConnectionOptions, connect, type NatsConnection } from "@nats-io/transport-node";
import type { BusHandlers, BusSnapshot, ClusterBus, PublishFailed } from "./bus.ts";
import {
  BusError,
  type BusLogger,
  jetStreamNames,
  type RefusalStats,
  silentLogger,
  sleep,
} from "./jetstream-common.ts";
import { StreamConsumer } from "./jetstream-consumer.ts";
import { Heartbeats } from "./jetstream-heartbeats.ts";
import { BusLifecycle } from "./jetstream-lifecycle.ts";
import { MembershipHistory, SnapshotStore } from "./jetstream-snapshots.ts";
import { type MemberKeys, sealEnvelope } from "./member-keys.ts";
import { type Member, membershipMsgId, newIncarnation } from "./membership.ts";
import { encodeEnvelope } from "./operation-codec.ts";

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
//
// The parts: jetstream-consumer.ts (the ordered consumer, the checks, the membership view,
// who waits for what), jetstream-heartbeats.ts (heartbeats and failure declaration),
// jetstream-snapshots.ts (the snapshot store), jetstream-lifecycle.ts (the member's one
// state: idle → starting → joined ⇄ rejoining → closing → closed). This file composes
// them: connecting, joining, publishing, leaving.

export { BusError, type BusLogger, jetStreamNames } from "./jetstream-common.ts";

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
  readonly #keys: MemberKeys | null;
  readonly #connectOptions: Partial<ConnectionOptions>;
  readonly #onRefused: ((reason: string) => void) | null;
  readonly #closeTimeoutMs: number;
  /** Refused messages and snapshots (forged, unsigned, unknown signer, replayed). */
  readonly stats: RefusalStats = { refused: 0, refusedSnapshots: 0 };

  /** idle → starting → joined ⇄ rejoining → closing → closed (jetstream-lifecycle.ts). */
  readonly #lifecycle = new BusLifecycle();
  #incarnation: string;
  #handlers: BusHandlers | null = null;
  #nc: NatsConnection | null = null;
  #js: JetStreamClient | null = null;
  #jsm: JetStreamManager | null = null;
  #snapshots: SnapshotStore | null = null;
  readonly #history = new MembershipHistory();
  readonly #consumer: StreamConsumer;
  readonly #heartbeats: Heartbeats;
  /** The NATS connection and its history, for `status()` (the /metrics gauges, issue 14). */
  readonly #link = {
    /** False between a disconnect and the reconnect: nothing published can be acknowledged. */
    up: true,
    reconnects: 0,
    /** When the connection was last lost (0: never). */
    downSince: 0,
  };

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
    this.#consumer = new StreamConsumer({
      nodeId: this.nodeId,
      cluster: this.#opts.cluster,
      stream: this.#names.stream,
      duplicateWindowMs: this.#opts.duplicateWindowMs,
      keys: this.#keys,
      log: this.#log,
      lifecycle: this.#lifecycle,
      history: this.#history,
      stats: this.stats,
      onRefused: this.#onRefused,
      handlers: () => this.#handlers,
      onJoined: (node) => this.#heartbeats.joined(node),
      onFencedOut: () => void this.#rejoin(),
    });
    this.#heartbeats = new Heartbeats({
      nodeId: this.nodeId,
      failureTimeoutMs,
      heartbeatIntervalMs: this.#opts.heartbeatIntervalMs,
      log: this.#log,
      lifecycle: this.#lifecycle,
      incarnation: () => this.#incarnation,
      view: () => this.#consumer.view,
      publish: (op, msgId, incarnation) => this.#publish(op, msgId, incarnation),
      watchdog: () => this.#consumer.watchdog(),
    });
  }

  /** Whether the NATS connection is up (false between a disconnect and the reconnect). */
  get connected(): boolean {
    return this.#link.up && this.#nc !== null && !this.#nc.isClosed();
  }

  /**
   * What a monitor alerts on (issue 14): the connection, how often it was re-established,
   * since when it is down, where this member is in the order and when its heartbeat was
   * last written. Read at scrape time; nothing here costs a request to NATS.
   */
  status(): JetStreamBusStatus {
    const connected = this.connected;
    const storedAt = this.#consumer.lastStoredAt;
    const writtenAt = this.#heartbeats.writtenAt;
    return {
      connected,
      reconnects: this.#link.reconnects,
      disconnectedSince: connected || this.#link.downSince === 0 ? null : this.#link.downSince,
      deliveredSeq: this.#consumer.lastSeq,
      lastOrderedAt: storedAt === 0 ? null : storedAt,
      heartbeatWrittenAt: writtenAt === 0 ? null : writtenAt,
      failed: this.#consumer.failure !== null,
    };
  }

  /** This run's incarnation (changes when the member is fenced out and re-joins). */
  get incarnation(): string {
    return this.#incarnation;
  }

  /** The last sequence delivered to this member. */
  get deliveredSeq(): number {
    return this.#consumer.lastSeq;
  }

  /** Membership as of the last delivered operation, lowest node first. */
  members(): Member[] {
    return this.#consumer.view.members();
  }

  liveMembers(): NodeId[] {
    return this.#consumer.view
      .members()
      .map((m) => m.node)
      .filter((n) => n === this.nodeId || !this.#heartbeats.presumedDead(n));
  }

  async start(handlers: BusHandlers): Promise<BusSnapshot | null> {
    if (this.#handlers) throw new BusError("bus already started");
    this.#handlers = handlers;
    // (A start after `close` goes on as far as "bus closed" stops it, as it always did.)
    this.#lifecycle.advance("idle", "starting");
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
    this.#consumer.open(this.#js, this.#jsm);
    await this.#ensureStream();
    const kvm = new Kvm(nc);
    this.#heartbeats.open(
      await ensureBucket(kvm, this.#names.heartbeatBucket, {
        history: 1,
        ttl: this.#opts.failureTimeoutMs,
        replicas: this.#opts.replicas,
        storage: StorageType.File,
      }),
    );
    this.#snapshots = new SnapshotStore(
      await ensureBucket(kvm, this.#names.snapshotBucket, {
        history: 1,
        replicas: this.#opts.replicas,
        storage: StorageType.File,
      }),
      {
        cluster: this.#opts.cluster,
        nodeId: this.nodeId,
        chunkBytes: this.#opts.snapshotChunkBytes,
        keys: this.#keys,
        log: this.#log,
        stats: this.stats,
        onRefused: this.#onRefused,
      },
    );
    // Heartbeat first: from the moment our join is ordered, others watch this key.
    await this.#heartbeats.put();

    const loaded = await this.#lifecycle.requireOpen(this.#snapshots).load();
    const startSeq = loaded?.meta.seq ?? 0;
    this.#consumer.resetAt(startSeq, loaded?.meta.members ?? []);
    const snapshot: BusSnapshot | null = loaded ? { seq: startSeq, bytes: loaded.bytes } : null;
    handlers.restore?.(snapshot);

    const info = await this.#jsm.streams.info(this.#names.stream);
    if (info.state.messages > 0 && info.state.first_seq > startSeq + 1) {
      throw new BusError(
        `stream ${this.#names.stream} starts at ${info.state.first_seq}, after snapshot ${startSeq}`,
      );
    }
    await this.#consumer.start();
    void this.#watchStatus(nc);
    await this.#consumer.waitSeq(info.state.last_seq);

    // A restarted node id whose previous run is still a member: declare that run failed
    // first (its marks are suspect, spec §4.5), so the new run never inherits them. A
    // survivor may publish the same declaration; the message id collapses the two.
    const previous = this.#consumer.view.incarnationOf(this.nodeId);
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
    this.#lifecycle.advance("starting", "joined"); // (unless closing began meanwhile)
    this.#heartbeats.startRounds();
    return snapshot;
  }

  publish(op: Operation, idPrefix: string, idNumber: number, onFailed: PublishFailed): void {
    // The id travels as the message id string, which the stream de-duplicates.
    this.#publish(op, idPrefix + idNumber, this.#incarnationFor(op)).catch((error) =>
      onFailed(error, op),
    );
  }

  /** A membership operation names the incarnation it is about; others none. */
  #incarnationFor(op: Operation): string {
    if (op.kind !== "node-join" && op.kind !== "node-leave" && op.kind !== "node-failed") {
      return "";
    }
    return op.node === this.nodeId
      ? this.#incarnation
      : (this.#consumer.view.incarnationOf(op.node) ?? "");
  }

  async saveSnapshot(snapshot: BusSnapshot): Promise<void> {
    const store = this.#lifecycle.requireOpen(this.#snapshots);
    const delivered = this.#consumer.lastSeq;
    if (snapshot.seq > delivered) {
      throw new BusError(`snapshot at ${snapshot.seq} is past the delivered ${delivered}`);
    }
    const members = this.#history.at(snapshot.seq);
    if (await store.save(snapshot, members)) this.#history.trim(snapshot.seq);
  }

  async close(): Promise<void> {
    const lifecycle = this.#lifecycle;
    if (lifecycle.closing) return;
    const wasMember = lifecycle.member;
    lifecycle.to("closing");
    this.#heartbeats.stopRounds();
    const deadline = Date.now() + this.#closeTimeoutMs;
    const left = () => Math.max(0, deadline - Date.now());
    const unreachable = !this.#link.up;
    if (wasMember && this.#nc && !this.#nc.isClosed()) {
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
          const deleted = this.#heartbeats.deleteOwn();
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
    if (!this.#lifecycle.closing) this.#lifecycle.to("closing");
    this.#heartbeats.stopRounds();
    await this.#shutdown(true);
  }

  // ---- publication ---------------------------------------------------------------------

  async #publish(op: Operation, msgId: string, incarnation: string): Promise<number> {
    const lifecycle = this.#lifecycle;
    const consumer = this.#consumer;
    const js = lifecycle.requireOpen(this.#js);
    const known = consumer.seenSeq(msgId);
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
    const waiter = consumer.awaitDelivery(msgId);
    let backoff = 50;
    try {
      for (;;) {
        if (lifecycle.closed) throw new BusError("bus closed");
        if (consumer.failure) throw consumer.failure;
        try {
          // A repeat within the duplicate window is acknowledged with the first copy's
          // sequence; a copy that lands while we wait is seen by our own consumer.
          const ack = js
            .publish(subject, seal(), { msgID: msgId, timeout: this.#opts.publishTimeoutMs })
            .then((a) => {
              if (!a.duplicate && a.seq <= consumer.lastSeq && consumer.seenSeq(msgId) !== a.seq) {
                // A new message at a sequence we already delivered: the stream went back.
                consumer.fail(new BusError(`stream went back: new ${msgId} stored at ${a.seq}`));
              }
              return a.seq;
            });
          return await Promise.race([ack, waiter.delivered]);
        } catch (error) {
          if (lifecycle.closed) throw new BusError("bus closed");
          const seen = consumer.seenSeq(msgId);
          if (seen !== undefined) return seen;
          this.#log.warn({ err: error, msgId }, "publish failed; retrying");
          await sleep(backoff);
          backoff = Math.min(backoff * 2, 1_000);
        }
      }
    } finally {
      waiter.cancel();
    }
  }

  async #publishAndWait(op: Operation, msgId: string, incarnation: string): Promise<number> {
    const seq = await this.#publish(op, msgId, incarnation);
    await this.#consumer.waitSeq(seq);
    return seq;
  }

  // ---- connection and membership -------------------------------------------------------

  async #watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") {
        if (this.#link.up) this.#link.downSince = Date.now();
        this.#link.up = false;
        this.#log.warn({ server: status.server }, "disconnected from NATS");
      } else if (status.type === "reconnect") {
        // Others may have been cut off as long as we were: give every member one full
        // timeout to refresh its heartbeat before anyone is declared failed.
        this.#heartbeats.reconnected();
        this.#link.up = true;
        this.#link.reconnects++;
        this.#log.info({ server: status.server }, "reconnected to NATS");
        void this.#heartbeats.refreshAfterReconnect();
        // Publications in flight are retried by `publish` itself; the owner re-publishes
        // whatever else it still waits for (P23). Message ids make both harmless.
        if (this.#lifecycle.member) this.#handlers?.reconnected?.();
      }
    }
  }

  /**
   * We were declared failed (our heartbeat lapsed, e.g. behind a partition) while still
   * running: the replicas have dropped our logs (spec §4.5). Re-join as a new run and let
   * the owner re-publish what it still waits for (P23); its kernel re-constructs.
   */
  async #rejoin(): Promise<void> {
    if (!this.#lifecycle.advance("joined", "rejoining")) return; // re-joining already
    try {
      this.#incarnation = newIncarnation(Date.now(), Math.random);
      this.#log.warn({ incarnation: this.#incarnation }, "fenced out of the cluster; re-joining");
      await this.#heartbeats.put();
      await this.#publishAndWait(
        { kind: "node-join", node: this.nodeId },
        membershipMsgId.join(this.nodeId, this.#incarnation),
        this.#incarnation,
      );
      this.#handlers?.reconnected?.();
    } catch (error) {
      if (!this.#lifecycle.closed) this.#log.error({ err: error }, "re-join failed");
    } finally {
      this.#lifecycle.advance("rejoining", "joined"); // (unless closing began meanwhile)
    }
  }

  // ---- plumbing ------------------------------------------------------------------------

  async #ensureStream(): Promise<void> {
    const jsm = this.#lifecycle.requireOpen(this.#jsm);
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

  async #shutdown(abrupt: boolean, drainMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.#lifecycle.closed) return;
    this.#lifecycle.to("closed");
    this.#heartbeats.stopRounds();
    this.#consumer.stop(new BusError("bus closed"));
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
