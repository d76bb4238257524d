import type { NodeId, Operation } from "@mirrorplane/clusterlog";
import type { BusHandlers, BusSnapshot, ClusterBus, OrderedOperation } from "./bus.ts";

// The in-process ClusterBus: one total order held in memory and shared by the members
// attached to it. On a single host there is one member (the `clusterlog` command); the
// deterministic simulation tests attach several members to one order and use the hooks
// to hold back, duplicate or lose publications.
//
// Delivery is synchronous: publishing orders the operation and delivers it to every
// member before `publish` returns (its promise is already settled). A publication made
// while a delivery is running — a member publishing `io-done` from `deliver`, say — is
// ordered at once and delivered after the current one, by the same loop, so `deliver` is
// never re-entered and every member sees every `seq` in order (bus.ts contract).

/** A publication on its way into the order. */
export interface Publication {
  readonly origin: NodeId;
  readonly msgId: string;
  readonly op: Operation;
}

/**
 * What a hook does with a publication: order it now, hold it back until `release()`,
 * order it and keep a second copy (same msgId) held back, or lose it (the publish
 * rejects, as when a connection to the ordering engine drops; `reconnect()` then makes
 * the member re-publish, P23).
 */
export type PublishAction = "order" | "hold" | "duplicate" | "drop";

export interface InProcessOrderOptions {
  /** Decides the fate of every publication; default: order at once. */
  readonly onPublish?: (publication: Publication) => PublishAction;
  /**
   * msgIds remembered for de-duplication at least, oldest forgotten first (JetStream has
   * a duplicate window too). Default 8,192: far more than can be outstanding (in-process a
   * publication is ordered at once unless a simulation hook holds it), and small enough
   * that the ids stay young for the garbage collector (PERF.md PB1: 65,536 cost ~20 %).
   */
  readonly dedupWindow?: number;
  /** Called with every snapshot saved (the `clusterlog` command writes it to its data dir). */
  readonly onSnapshot?: (snapshot: BusSnapshot) => void;
}

interface Held {
  readonly publication: Publication;
  readonly resolve: (seq: number) => void;
}

/** The shared total order. Members attach through `bus(nodeId)`. */
export class InProcessOrder {
  readonly #options: InProcessOrderOptions;
  readonly #dedupWindow: number;
  /** Retained entries: everything after the latest snapshot that a member may still need. */
  #entries: OrderedOperation[] = [];
  #lastSeq = 0;
  /**
   * msgId → seq in two generations: ids go into `#recentIds`; when it holds `dedupWindow`
   * ids it becomes `#olderIds` and the one before is dropped whole. So at least the last
   * `dedupWindow` ids are remembered, at one lookup and one insert per publication and no
   * deletes (a ring of ids with a delete per publication cost ~15 % of a request, PB1).
   */
  #recentIds = new Map<string, number>();
  #olderIds = new Map<string, number>();
  readonly #members = new Map<NodeId, InProcessBus>();
  readonly #held: Held[] = [];
  #snapshot: BusSnapshot | null = null;
  #pumping = false;

  constructor(options: InProcessOrderOptions = {}) {
    this.#options = options;
    this.#dedupWindow = options.dedupWindow ?? 8_192;
  }

  /** A member endpoint for `nodeId`; call `start()` on it to join. */
  bus(nodeId: NodeId): InProcessBus {
    return new InProcessBus(this, nodeId);
  }

  /** The last `seq` ordered. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** Entries still retained (after compaction), oldest first. */
  get entries(): readonly OrderedOperation[] {
    return this.#entries;
  }

  get latestSnapshot(): BusSnapshot | null {
    return this.#snapshot;
  }

  /** Publications held back by the hook, oldest first. */
  get held(): readonly Publication[] {
    return this.#held.map((h) => h.publication);
  }

  /** Order the held publication at `index` now. */
  release(index = 0): void {
    const [held] = this.#held.splice(index, 1);
    if (!held) throw new Error(`no held publication at ${index}`);
    held.resolve(this.#order(held.publication));
  }

  /** Order every held publication, oldest first. */
  releaseAll(): void {
    while (this.#held.length > 0) this.release(0);
  }

  /**
   * Declare `node` failed: it is detached (gets nothing more) and `node-failed` is
   * written into the order at this point, as the JetStream bus does when a member's
   * heartbeat expires.
   */
  fail(node: NodeId): void {
    const member = this.#members.get(node);
    if (member) member.detach();
    this.#members.delete(node);
    this.#order({
      origin: node,
      msgId: `failed:${node}:${this.#lastSeq}`,
      op: { kind: "node-failed", node },
    });
  }

  /** Simulate a lost and regained connection: the member re-publishes what is unconfirmed. */
  reconnect(node: NodeId): void {
    this.#members.get(node)?.reconnected();
  }

  liveMembers(): NodeId[] {
    return [...this.#members.keys()].sort((a, b) => a - b);
  }

  // ---- used by InProcessBus ----

  attach(member: InProcessBus): { snapshot: BusSnapshot | null; from: number } {
    if (this.#members.has(member.nodeId)) {
      throw new Error(`node ${member.nodeId} is already a member of this order`);
    }
    this.#members.set(member.nodeId, member);
    const snapshot = this.#snapshot;
    return { snapshot, from: snapshot ? snapshot.seq + 1 : 1 };
  }

  detach(member: InProcessBus): void {
    if (this.#members.get(member.nodeId) === member) this.#members.delete(member.nodeId);
    this.#compact();
  }

  publish(publication: Publication): Promise<number> {
    const known = this.#seqOf(publication.msgId);
    if (known !== undefined) return Promise.resolve(known);
    const action = this.#options.onPublish?.(publication) ?? "order";
    switch (action) {
      case "order":
        return Promise.resolve(this.#order(publication));
      case "duplicate": {
        const seq = this.#order(publication);
        this.#held.push({ publication, resolve: () => {} });
        return Promise.resolve(seq);
      }
      case "hold":
        return new Promise((resolve) => this.#held.push({ publication, resolve }));
      case "drop":
        return Promise.reject(new Error(`publication ${publication.msgId} lost`));
    }
  }

  /** `publish` without a promise (ClusterBus.publishQuiet). */
  publishQuiet(publication: Publication, onFailed: (error: unknown) => void): void {
    const hook = this.#options.onPublish;
    if (!hook) {
      this.#order(publication); // de-duplicates by msgId itself
      return;
    }
    if (this.#seqOf(publication.msgId) !== undefined) return;
    switch (hook(publication)) {
      case "order":
        this.#order(publication);
        return;
      case "duplicate":
        this.#order(publication);
        this.#held.push({ publication, resolve: () => {} });
        return;
      case "hold":
        this.#held.push({ publication, resolve: () => {} });
        return;
      case "drop": {
        const error = new Error(`publication ${publication.msgId} lost`);
        queueMicrotask(() => onFailed(error));
        return;
      }
    }
  }

  /** Order a membership operation of the bus itself (no hook). */
  orderNow(publication: Publication): number {
    return this.#order(publication);
  }

  saveSnapshot(snapshot: BusSnapshot): void {
    if (snapshot.seq > this.#lastSeq) throw new Error("snapshot from the future");
    if (this.#snapshot && snapshot.seq < this.#snapshot.seq) return; // keep the latest only
    this.#snapshot = { seq: snapshot.seq, bytes: snapshot.bytes.slice() };
    this.#options.onSnapshot?.(this.#snapshot);
    this.#compact();
  }

  #seqOf(msgId: string): number | undefined {
    return this.#recentIds.get(msgId) ?? this.#olderIds.get(msgId);
  }

  #order(publication: Publication): number {
    const known = this.#seqOf(publication.msgId);
    if (known !== undefined) return known; // a duplicate: delivered once only
    const seq = ++this.#lastSeq;
    if (this.#recentIds.size >= this.#dedupWindow) {
      this.#olderIds = this.#recentIds;
      this.#recentIds = new Map();
    }
    this.#recentIds.set(publication.msgId, seq);
    this.#entries.push({
      seq,
      origin: publication.origin,
      msgId: publication.msgId,
      op: publication.op,
    });
    this.#pump();
    return seq;
  }

  /** Deliver every retained entry each member has not seen yet, in order, one at a time. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        let progressed = false;
        for (const member of this.#members.values()) {
          const next = this.#nextFor(member);
          if (next) {
            member.deliverEntry(next);
            progressed = true;
          }
        }
        if (!progressed) break;
      }
    } finally {
      this.#pumping = false;
    }
    this.#compact();
  }

  #nextFor(member: InProcessBus): OrderedOperation | undefined {
    if (!member.ready) return undefined;
    const first = this.#entries[0]?.seq;
    if (first === undefined) return undefined;
    return this.#entries[member.delivered + 1 - first];
  }

  /** Drop entries every member has seen and the latest snapshot covers. */
  #compact(): void {
    if (this.#pumping) return;
    let keepFrom = this.#snapshot ? this.#snapshot.seq + 1 : 1;
    for (const member of this.#members.values()) {
      keepFrom = Math.min(keepFrom, member.delivered + 1);
    }
    const first = this.#entries[0]?.seq;
    if (first !== undefined && keepFrom > first) this.#entries.splice(0, keepFrom - first);
  }

  /** Run a member's catch-up through the pump, so it stays in step with the others. */
  startDelivery(): void {
    this.#pump();
  }
}

/** One member's endpoint on an InProcessOrder. */
export class InProcessBus implements ClusterBus {
  readonly nodeId: NodeId;
  readonly #order: InProcessOrder;
  #handlers: BusHandlers | null = null;
  #state: "new" | "started" | "closed" = "new";
  /** The last seq delivered to this member. */
  delivered = 0;
  /** Set once the member is attached and its starting position is known. */
  ready = false;

  constructor(order: InProcessOrder, nodeId: NodeId) {
    this.#order = order;
    this.nodeId = nodeId;
  }

  async start(handlers: BusHandlers): Promise<BusSnapshot | null> {
    if (this.#state !== "new") throw new Error("bus already started");
    this.#state = "started";
    this.#handlers = handlers;
    const { snapshot, from } = this.#order.attach(this);
    this.delivered = from - 1;
    handlers.restore?.(snapshot);
    this.ready = true;
    // Catch up on what was ordered after the snapshot, then join; the pump delivers both.
    this.#order.startDelivery();
    this.#order.orderNow({
      origin: this.nodeId,
      msgId: `join:${this.nodeId}:${this.#order.lastSeq}`,
      op: { kind: "node-join", node: this.nodeId },
    });
    return snapshot;
  }

  publish(op: Operation, msgId: string): Promise<number> {
    if (this.#state !== "started") return Promise.reject(new Error("bus is not started"));
    return this.#order.publish({ origin: this.nodeId, msgId, op });
  }

  publishQuiet(op: Operation, msgId: string, onFailed: (error: unknown) => void): void {
    if (this.#state !== "started") {
      const error = new Error("bus is not started");
      queueMicrotask(() => onFailed(error));
      return;
    }
    this.#order.publishQuiet({ origin: this.nodeId, msgId, op }, onFailed);
  }

  async saveSnapshot(snapshot: BusSnapshot): Promise<void> {
    if (this.#state !== "started") throw new Error("bus is not started");
    this.#order.saveSnapshot(snapshot);
  }

  liveMembers(): NodeId[] {
    return this.#order.liveMembers();
  }

  async close(): Promise<void> {
    if (this.#state !== "started") {
      this.#state = "closed";
      return;
    }
    // Leaving is the bus's own doing: it bypasses the publication hook.
    this.#order.orderNow({
      origin: this.nodeId,
      msgId: `leave:${this.nodeId}:${this.#order.lastSeq}`,
      op: { kind: "node-leave", node: this.nodeId },
    });
    this.detach();
    this.#order.detach(this);
  }

  // ---- used by InProcessOrder ----

  deliverEntry(entry: OrderedOperation): void {
    this.delivered = entry.seq;
    this.#handlers?.deliver(entry);
  }

  reconnected(): void {
    this.#handlers?.reconnected?.();
  }

  detach(): void {
    this.#state = "closed";
    this.ready = false;
    this.#handlers = null;
  }
}
