import type { NodeId } from "@mirrorplane/clusterlog";
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { BusHandlers, OrderedOperation } from "./bus.ts";
import { BusError, type BusLogger, type RefusalStats } from "./jetstream-common.ts";
import type { BusLifecycle } from "./jetstream-lifecycle.ts";
import type { MembershipHistory } from "./jetstream-snapshots.ts";
import { type MemberKeys, openEnvelope } from "./member-keys.ts";
import { type Member, MembershipView } from "./membership.ts";
import { decodeEnvelope } from "./operation-codec.ts";

// The JetStream bus's delivery: this member's ordered consumer of the whole stream, the
// checks every message passes before anything of it is used (order, signature), the
// membership view the delivered operations build, and who waits for which sequence or
// message id. The stream sequence is the `seq` delivered; a gap stops the member
// (`failure`), because a replica that missed an operation can no longer follow the order.

const RECENT_IDS = 50_000;

/** What a refused message looked like, for the member's warning line. */
interface Refusal {
  readonly seq: number;
  readonly subject: string;
  readonly msgId: string;
  readonly claimedNode: NodeId | null;
  readonly reason: string;
}

export interface StreamConsumerOptions {
  readonly nodeId: NodeId;
  readonly cluster: string;
  readonly stream: string;
  readonly duplicateWindowMs: number;
  readonly keys: MemberKeys | null;
  readonly log: BusLogger;
  readonly lifecycle: BusLifecycle;
  /** Membership after each change (the snapshot store asks it for a snapshot's view). */
  readonly history: MembershipHistory;
  /** The bus's counters (`refused` is counted here). */
  readonly stats: RefusalStats;
  readonly onRefused: ((reason: string) => void) | null;
  readonly handlers: () => BusHandlers | null;
  /** A `node-join` changed membership (the node's heartbeat counts as fresh again). */
  readonly onJoined: (node: NodeId) => void;
  /** This member was declared failed or left while still a member: it must re-join. */
  readonly onFencedOut: () => void;
}

/** `awaitDelivery`: resolves with the message's seq once delivered; `cancel` stops waiting. */
export interface DeliveryWaiter {
  readonly delivered: Promise<number>;
  cancel(): void;
}

export class StreamConsumer {
  readonly #o: StreamConsumerOptions;
  #js: JetStreamClient | null = null;
  #jsm: JetStreamManager | null = null;
  #messages: ConsumerMessages | null = null;
  #generation = 0;

  #view = new MembershipView();
  #lastSeq = 0;
  /** When NATS stored the last operation delivered (0: none yet). */
  #lastStoredAt = 0;
  #failure: Error | null = null;
  #recentIds = new Map<string, number>();
  #idWaiters = new Map<string, ((seq: number) => void)[]>();
  #seqWaiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  #stalledTicks = 0;
  #seqAtLastTick = 0;
  /** When each refusal reason was last logged, and how many since (one line a minute). */
  readonly #refusalLog = new Map<string, { at: number; suppressed: number }>();

  constructor(options: StreamConsumerOptions) {
    this.#o = options;
  }

  /** The JetStream clients of the connection `start` opened. */
  open(js: JetStreamClient, jsm: JetStreamManager): void {
    this.#js = js;
    this.#jsm = jsm;
  }

  /** Delivery resumes after `seq`, from membership `members` (the snapshot's, or none). */
  resetAt(seq: number, members: readonly Member[]): void {
    this.#view = new MembershipView(members);
    this.#o.history.reset(seq, this.#view.members());
    this.#lastSeq = seq;
  }

  /** Membership as of the last delivered operation. */
  get view(): MembershipView {
    return this.#view;
  }

  /** The last sequence delivered to this member. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** When NATS stored the last operation delivered (the server's clock; 0: none yet). */
  get lastStoredAt(): number {
    return this.#lastStoredAt;
  }

  /** Why the member stopped following the order (null: it follows it). */
  get failure(): Error | null {
    return this.#failure;
  }

  /** The seq a message id was delivered at, if recently. */
  seenSeq(msgId: string): number | undefined {
    return this.#recentIds.get(msgId);
  }

  awaitDelivery(msgId: string): DeliveryWaiter {
    let onDelivered: ((seq: number) => void) | null = null;
    const delivered = new Promise<number>((resolve) => {
      onDelivered = resolve;
      const list = this.#idWaiters.get(msgId) ?? [];
      list.push(resolve);
      this.#idWaiters.set(msgId, list);
    });
    const cancel = () => {
      const list = this.#idWaiters.get(msgId);
      if (list && onDelivered) {
        const rest = list.filter((w) => w !== onDelivered);
        if (rest.length > 0) this.#idWaiters.set(msgId, rest);
        else this.#idWaiters.delete(msgId);
      }
    };
    return { delivered, cancel };
  }

  waitSeq(seq: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (seq <= this.#lastSeq) return Promise.resolve();
    return new Promise((resolve, reject) => this.#seqWaiters.push({ seq, resolve, reject }));
  }

  /** The member can no longer follow the order: stop delivering, fail every waiter. */
  fail(error: Error): void {
    this.#failure = error;
    this.#o.log.error({ err: error }, "cluster bus stopped");
    for (const w of this.#seqWaiters) w.reject(error);
    this.#seqWaiters = [];
  }

  /** The bus shuts down: every waiter fails with `reason`, the consumer stops. */
  stop(reason: Error): void {
    for (const w of this.#seqWaiters) w.reject(reason);
    this.#seqWaiters = [];
    try {
      this.#messages?.stop();
    } catch {
      // already stopped
    }
  }

  /**
   * (Re)creates this member's ordered consumer from the sequence after the last one
   * delivered. The client library also re-creates it after a reconnect, but only once its
   * own checks time out (tens of seconds after a NATS restart); the watchdog (each
   * heartbeat round) calls this when the stream has moved on and we have not.
   */
  async start(): Promise<void> {
    const js = this.#o.lifecycle.requireOpen(this.#js);
    const generation = ++this.#generation;
    const previous = this.#messages;
    this.#messages = null;
    try {
      previous?.stop();
    } catch {
      // already stopped
    }
    const consumer = await js.consumers.get(this.#o.stream, {
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: this.#lastSeq + 1,
    });
    if (generation !== this.#generation || this.#o.lifecycle.closed) return;
    const messages = await consumer.consume({ max_messages: 512 });
    this.#messages = messages;
    void this.#pump(messages, generation);
  }

  /**
   * Compares our position with the stream's: behind with no progress for two rounds →
   * re-create the consumer; the stream *behind us* → it lost acknowledged operations (a
   * single, unreplicated NATS server killed before writing them out), which no replica
   * can recover from, so stop rather than diverge.
   */
  async watchdog(): Promise<void> {
    const jsm = this.#jsm;
    if (!jsm || this.#failure) return;
    // Compare with what was delivered *before* asking: deliveries go on meanwhile.
    const deliveredBefore = this.#lastSeq;
    const info = await jsm.streams.info(this.#o.stream);
    const last = info.state.last_seq;
    if (last < deliveredBefore) {
      this.fail(
        new BusError(
          `stream ${this.#o.stream} is at ${last} but ${deliveredBefore} were delivered: ` +
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
      this.#o.log.warn({ at: this.#lastSeq, streamAt: last }, "consumer stalled; re-creating it");
      await this.start();
    }
  }

  async #pump(messages: ConsumerMessages, generation: number): Promise<void> {
    try {
      for await (const m of messages) {
        if (this.#o.lifecycle.closed || generation !== this.#generation) break;
        this.#onMessage(
          m.seq,
          m.data,
          m.headers?.get("Nats-Msg-Id") || `seq:${m.seq}`,
          m.subject,
          Number(m.timestampNanos / 1_000_000n),
        );
      }
    } catch (error) {
      if (!this.#o.lifecycle.closed) this.#o.log.error({ err: error }, "stream consumer ended");
    }
  }

  #onMessage(
    seq: number,
    data: Uint8Array,
    msgId: string,
    subject: string,
    storedAt: number,
  ): void {
    if (seq <= this.#lastSeq || this.#failure) return; // replayed after a consumer reset
    if (seq !== this.#lastSeq + 1) {
      // Only a purge past our position can do this; the replica can no longer follow.
      this.fail(new BusError(`gap in the stream: expected ${this.#lastSeq + 1}, got ${seq}`));
      return;
    }
    this.#lastSeq = seq;
    this.#lastStoredAt = storedAt;
    const log = this.#o.log;
    // Nothing of a message is used before its signature is checked (issue 15).
    const opened = openEnvelope(data, {
      cluster: this.#o.cluster,
      msgId,
      storedAt,
      maxSkewMs: this.#o.duplicateWindowMs / 2,
      trusted: this.#o.keys ? this.#o.keys.trusted : null,
    });
    let envelope: ReturnType<typeof decodeEnvelope> | null = null;
    if (opened.ok) {
      this.#remember(msgId, seq);
      try {
        envelope = decodeEnvelope(opened.envelope);
      } catch (error) {
        log.error({ err: error, seq }, "undecodable operation in the stream");
      }
      if (envelope && opened.signer !== null && envelope.origin !== opened.signer) {
        envelope = null; // cannot happen: the signer is the origin the envelope claims
      }
    } else {
      this.#refuse({ seq, subject, msgId, claimedNode: opened.claimedNode, reason: opened.reason });
      try {
        this.#o.handlers()?.skipped?.(seq);
      } catch (error) {
        log.error({ err: error, seq }, "skipped threw");
      }
    }
    if (envelope) {
      const { op, origin, incarnation } = envelope;
      if (this.#view.apply(op, incarnation)) {
        this.#o.history.record(seq, this.#view.members());
        if (op.kind === "node-join") this.#o.onJoined(op.node);
      }
      const entry: OrderedOperation = { seq, origin, msgId, op };
      try {
        this.#o.handlers()?.deliver(entry);
      } catch (error) {
        log.error({ err: error, seq }, "deliver threw");
      }
      if (
        (op.kind === "node-failed" || op.kind === "node-leave") &&
        op.node === this.#o.nodeId &&
        this.#o.lifecycle.member &&
        !this.#view.has(this.#o.nodeId)
      ) {
        this.#o.onFencedOut();
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
    this.#o.stats.refused++;
    this.#o.onRefused?.(refusal.reason);
    const now = Date.now();
    const last = this.#refusalLog.get(refusal.reason);
    if (last && now - last.at < 60_000) {
      last.suppressed++;
      return;
    }
    this.#refusalLog.set(refusal.reason, { at: now, suppressed: 0 });
    this.#o.log.warn(
      { ...refusal, ...(last?.suppressed ? { suppressed: last.suppressed } : {}) },
      `refused an operation on ${refusal.subject} claiming node ${refusal.claimedNode ?? "?"}: ${refusal.reason}; not applied`,
    );
  }

  #remember(msgId: string, seq: number): void {
    this.#recentIds.set(msgId, seq);
    if (this.#recentIds.size > RECENT_IDS) {
      const oldest = this.#recentIds.keys().next().value;
      if (oldest !== undefined) this.#recentIds.delete(oldest);
    }
  }
}
