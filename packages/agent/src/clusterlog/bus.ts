import type { NodeId, Operation } from "@mirrorplane/clusterlog";

/**
 * The ClusterBus: the total order every replica of the cluster log applies
 * (ARCHITECTURE.md "The cluster log", CLUSTERLOG-SPEC.md §4). Two implementations sit
 * behind this one interface:
 *
 * - in-process (`in-process-bus.ts`): one host, and the deterministic simulation tests;
 * - NATS JetStream (`jetstream-bus.ts`): one stream per cluster, stream sequence = order,
 *   message ids make a re-publication idempotent, membership operations written into
 *   the same stream, failure declared when a member's heartbeat in a KV bucket expires.
 *
 * The bus carries `Operation`s of `@mirrorplane/clusterlog` unchanged; the state machine
 * (`ClusterLog.apply`) is the only thing that interprets them. Every member applies every
 * delivered operation, in `seq` order, to its own replica; a member answers only the
 * replies addressed to its own node and performs only the I/O addressed to it, publishing
 * the outcome as an `io-done` operation.
 */
export interface OrderedOperation {
  /**
   * Position in the total order: strictly increasing, starting at 1; no gaps but those
   * the bus announced through `BusHandlers.skipped` (refused messages).
   */
  readonly seq: number;
  /** The member that published it. */
  readonly origin: NodeId;
  /** The publisher's idempotency key; an id seen before is never delivered twice. */
  readonly msgId: string;
  readonly op: Operation;
}

export interface BusSnapshot {
  /** The last `seq` the snapshot includes; delivery resumes at `seq + 1`. */
  readonly seq: number;
  /** `ClusterLog.snapshot()` bytes. */
  readonly bytes: Uint8Array;
}

export interface BusHandlers {
  /**
   * Optional (added with the JetStream bus): called once during `start`, before the first
   * `deliver`, with the snapshot `start` will also resolve with (null = start from an
   * empty replica). Lets a member build its replica before operations arrive instead of
   * buffering the deliveries that precede `start`'s resolution. Must not throw.
   */
  restore?(snapshot: BusSnapshot | null): void;
  /**
   * Called for every operation in order, exactly once per `seq`, never concurrently.
   * Must not throw; must apply synchronously (replies and I/O are derived from it).
   */
  deliver(entry: OrderedOperation): void;
  /**
   * Called when the connection to the ordering engine is lost and regained, or the
   * member was fenced out: operations this member published but has not seen delivered
   * must be re-published with the same msgId (P23) — the bus de-duplicates them.
   */
  reconnected?(): void;
  /**
   * Optional: the bus refused the message at `seq` (not signed by a trusted member, issue
   * 15): it is no operation, and the next one delivered follows it. Must not throw.
   */
  skipped?(seq: number): void;
}

export interface ClusterBus {
  readonly nodeId: NodeId;

  /**
   * Joins the cluster: returns the latest snapshot to start from (null when this is the
   * first member, or none was saved), then delivers every operation after it, in order,
   * through `handlers.deliver` — including this member's own `node-join`, which the bus
   * publishes as part of joining. Resolves once the join operation has been delivered.
   */
  start(handlers: BusHandlers): Promise<BusSnapshot | null>;

  /**
   * Publishes an operation into the total order. Resolves with its `seq` once ordered
   * (it will be, or has been, delivered to every member). Publishing again with the same
   * `msgId` resolves with the original `seq` and delivers nothing new.
   */
  publish(op: Operation, msgId: string): Promise<number>;

  /**
   * Optional: `publish` for a caller that does not need the `seq` (PERF.md PB1: no promise
   * per kernel request). Same ordering and de-duplication; a lost publication calls
   * `onFailed`, never synchronously.
   */
  publishQuiet?(op: Operation, msgId: string, onFailed: (error: unknown) => void): void;

  /**
   * Optional: `publishQuiet` for the msgId `idPrefix + idNumber`, which the bus need not
   * build as a string (PERF.md PB1: the in-process order de-duplicates such ids by number
   * within their prefix, and its entries build `msgId` only when it is read). Number the
   * ids of a prefix 1, 2, 3…: the in-process order then remembers them with one
   * comparison each. An id published this way must always be published this way
   * (re-publication included). A lost publication calls `onFailed` with the operation,
   * never synchronously.
   */
  publishNumbered?(
    op: Operation,
    idPrefix: string,
    idNumber: number,
    onFailed: (error: unknown, op: Operation) => void,
  ): void;

  /**
   * Saves a snapshot for joiners; only the latest one is kept. The bytes are the bus's from
   * here on: the caller never changes them (so none has to copy them).
   */
  saveSnapshot(snapshot: BusSnapshot): Promise<void>;

  /** Members currently believed alive (heartbeat fresh), lowest first. */
  liveMembers(): NodeId[];

  /** Leaves gracefully (publishes `node-leave`) and releases every resource. */
  close(): Promise<void>;
}
