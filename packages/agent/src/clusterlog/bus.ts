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

/** A publication was lost (`ClusterBus.publish`): called later, never synchronously. */
export type PublishFailed = (error: unknown, op: Operation) => void;

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
   * Publishes an operation into the total order under the id `idPrefix + idNumber`. A
   * publisher numbers the ids of its prefix 1, 2, 3…; each bus encodes the id its own way
   * (JetStream: the message id string, de-duplicated by the stream; in-process: the number
   * within its prefix, remembered with one comparison, no string per request, PERF.md
   * PB1), and a delivered entry's `msgId` reads `idPrefix + idNumber` (`publishedNumber`
   * reads the number back). Publishing an id again (after `reconnected`, P23) delivers
   * nothing new. Nothing is returned: the publisher sees its operation in the order
   * (`deliver`); a lost publication calls `onFailed` with the operation, never
   * synchronously.
   */
  publish(op: Operation, idPrefix: string, idNumber: number, onFailed: PublishFailed): void;

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

/**
 * The number a delivered entry was published under with `idPrefix` (`ClusterBus.publish`),
 * or -1 when its msgId is not of that prefix (another publisher's, the bus's own).
 */
export function publishedNumber(msgId: string, idPrefix: string): number {
  if (!msgId.startsWith(idPrefix) || msgId.length === idPrefix.length) return -1;
  const rest = msgId.slice(idPrefix.length);
  return /^[0-9]+$/.test(rest) ? Number(rest) : -1;
}
