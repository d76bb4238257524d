import {
  type ApplyResult,
  type BlockDevice,
  ClusterLog,
  type ClusterLogOptions,
  type DmUlogRequest,
  type NodeId,
  type Operation,
  performLogIo,
  type Reply,
} from "@mirrorplane/clusterlog";
import {
  type BusSnapshot,
  type ClusterBus,
  type OrderedOperation,
  publishedNumber,
} from "../src/clusterlog/bus.ts";

// A minimal cluster member over any ClusterBus: one replica of the cluster log, fed every
// ordered operation; it answers only its own node's requests, performs only the log I/O
// addressed to it and publishes the outcome (spec §4.1). This is the test driver for the
// bus integration tests and the PB4 benchmark; the agent's cluster-log server does the
// same behind its sockets.

/** A lost publication stays unconfirmed: `reconnected` publishes it again (P23). */
const IGNORE = () => {};

export type DeviceResolver = (node: NodeId, logDevice: string) => BlockDevice | null;

export interface BusReplicaOptions {
  readonly bus: ClusterBus;
  readonly resolveDevice?: DeviceResolver;
  readonly logOptions?: ClusterLogOptions;
  /** Distinguishes this run's request message ids from an earlier run's. */
  readonly runId?: string;
  /** Called after each operation is applied (tests record invariants here). */
  readonly onApplied?: (entry: OrderedOperation, result: ApplyResult, log: ClusterLog) => void;
}

interface Waiting {
  /** Its publication number under `req:<node>:<run>:`. */
  readonly n: number;
  readonly request: DmUlogRequest;
  readonly resolve: (reply: Reply) => void;
}

export function requestKey(uuid: string, luid: bigint, seq: number): string {
  return `${uuid}\u0000${luid}\u0000${seq}`;
}

export class BusReplica {
  readonly bus: ClusterBus;
  readonly node: NodeId;
  log: ClusterLog;
  /** Answers delivered per request key: a test asserts every value is exactly 1. */
  readonly answers = new Map<string, number>();
  /** Replies addressed to us that matched no waiting request (stale or duplicate, P2). */
  unmatchedReplies = 0;
  /** Operations applied since start (after the snapshot). */
  applied = 0;
  #startedFrom: BusSnapshot | null = null;
  readonly #waiting = new Map<string, Waiting>();
  readonly #resolve: DeviceResolver;
  readonly #options: BusReplicaOptions;
  /** Publication ids: requests numbered 1, 2, 3…; I/O completions by their ioId. */
  readonly #requestIds: string;
  readonly #ioIds: string;
  #requests = 0;

  constructor(options: BusReplicaOptions) {
    this.bus = options.bus;
    this.node = options.bus.nodeId;
    this.#options = options;
    this.#resolve = options.resolveDevice ?? (() => null);
    const runId =
      options.runId ?? `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    this.#requestIds = `req:${this.node}:${runId}:`;
    this.#ioIds = `io:${this.node}:${runId}:`;
    this.log = new ClusterLog(options.logOptions);
  }

  /** The snapshot this replica started from (null = the beginning of the stream). */
  get startedFrom(): BusSnapshot | null {
    return this.#startedFrom;
  }

  get outstanding(): number {
    return this.#waiting.size;
  }

  async start(): Promise<void> {
    this.#joined = false;
    await this.bus.start({
      restore: (snapshot) => {
        this.#startedFrom = snapshot;
        if (!snapshot) return;
        const restored = ClusterLog.fromSnapshot(snapshot.bytes, this.#options.logOptions);
        if (!restored.ok) throw new Error(`snapshot rejected: ${restored.error.message}`);
        this.log = restored.value;
      },
      deliver: (entry) => this.#deliver(entry),
      reconnected: () => this.#republish(),
    });
    this.#joined = true;
  }

  /**
   * False while `start` replays the history after the snapshot: the replies and I/O in it
   * belonged to an earlier run of this node id and were answered and done back then.
   * Performing that I/O again would write a stale log image over the current one.
   */
  #joined = false;

  /**
   * A kernel request from this node. Local read-only requests are answered from the
   * replica (spec §4.2); everything else is ordered and answered when applied.
   */
  request(request: DmUlogRequest): Promise<Reply> {
    const local = this.log.answerLocally(this.node, request);
    if (local) {
      this.#count(requestKey(request.uuid, request.luid, request.seq));
      return Promise.resolve(local);
    }
    const key = requestKey(request.uuid, request.luid, request.seq);
    const waiting = this.#waiting.get(key);
    // The same request again (the kernel's resend): the same id, delivered once.
    const n = waiting?.n ?? ++this.#requests;
    return new Promise<Reply>((resolve) => {
      this.#waiting.set(key, { n, request, resolve });
      // A failed publication stays waiting: `reconnected` publishes it again (P23).
      this.bus.publish({ kind: "request", node: this.node, request }, this.#requestIds, n, IGNORE);
    });
  }

  /** Save a snapshot of this replica at its current position for joiners. */
  async saveSnapshot(): Promise<BusSnapshot> {
    const snapshot = { seq: this.#lastSeq, bytes: this.log.snapshot() };
    await this.bus.saveSnapshot(snapshot);
    return snapshot;
  }

  #lastSeq = 0;

  get deliveredSeq(): number {
    return this.#lastSeq;
  }

  #deliver(entry: OrderedOperation): void {
    this.#lastSeq = entry.seq;
    this.applied++;
    const result = this.log.apply(entry.op);
    this.#options.onApplied?.(entry, result, this.log);
    if (!this.#joined) return;
    for (const reply of result.replies) {
      if (reply.node !== this.node) continue;
      const key = requestKey(reply.header.uuid, reply.header.luid, reply.header.seq);
      const waiting = this.#waiting.get(key);
      if (!waiting) {
        this.unmatchedReplies++;
        continue;
      }
      this.#waiting.delete(key);
      this.#count(key);
      waiting.resolve(reply);
    }
    this.#unconfirmedIo.delete(publishedNumber(entry.msgId, this.#ioIds));
    for (const io of result.io) {
      if (io.node !== this.node) continue;
      const done = performLogIo(io, this.#resolve(io.node, io.logDevice));
      this.#unconfirmedIo.set(io.ioId, done);
      // If this member dies first, the survivors re-assign the I/O at its failure.
      this.bus.publish(done, this.#ioIds, io.ioId, IGNORE);
    }
  }

  /** I/O completions published and not yet seen delivered, by ioId. */
  readonly #unconfirmedIo = new Map<number, Operation>();

  #count(key: string): void {
    this.answers.set(key, (this.answers.get(key) ?? 0) + 1);
  }

  /** P23: after a reconnect or fencing, publish again whatever still waits for a reply. */
  #republish(): void {
    for (const [ioId, op] of this.#unconfirmedIo) this.bus.publish(op, this.#ioIds, ioId, IGNORE);
    for (const w of this.#waiting.values()) {
      const op = { kind: "request", node: this.node, request: w.request } as const;
      this.bus.publish(op, this.#requestIds, w.n, IGNORE);
    }
  }
}
