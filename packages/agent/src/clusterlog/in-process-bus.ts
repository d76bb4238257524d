import type { NodeId, Operation } from "@mirrorplane/clusterlog";
import type {
  BusHandlers,
  BusSnapshot,
  ClusterBus,
  OrderedOperation,
  PublishFailed,
} from "./bus.ts";

// The in-process ClusterBus: one total order held in memory and shared by the members
// attached to it. On a single host there is one member (the `clusterlog` command); the
// deterministic simulation tests attach several members to one order and use the hooks
// to hold back, duplicate or lose publications.
//
// Delivery is synchronous: publishing orders the operation and delivers it to every
// member before `publish` returns. A publication made while a delivery is running — a
// member publishing `io-done` from `deliver`, say — is ordered at once and delivered after
// the current one, by the same loop, so `deliver` is never re-entered and every member
// sees every `seq` in order (bus.ts contract).

/** A publication on its way into the order. */
export interface Publication {
  readonly origin: NodeId;
  readonly msgId: string;
  readonly op: Operation;
}

/**
 * What a hook does with a publication: order it now, hold it back until `release()`,
 * order it and keep a second copy (same msgId) held back, or lose it (the publisher's
 * `onFailed` is called, as when a connection to the ordering engine drops; `reconnect()`
 * then makes the member re-publish, P23).
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
   * Numbered ids (every member's publication) ordered in turn are remembered without this
   * limit, at no cost; the window applies to those ordered out of turn and to the ids of
   * the bus's own membership operations.
   */
  readonly dedupWindow?: number;
  /** Called with every snapshot saved (the `clusterlog` command writes it to its data dir). */
  readonly onSnapshot?: (snapshot: BusSnapshot) => void;
  /**
   * Start the order from this snapshot (the previous process's state handed over on a
   * clean restart, handoff.ts): members join from it, the next seq follows it.
   */
  readonly initialSnapshot?: BusSnapshot;
}

/**
 * A publication whose msgId is `prefix + n` (`ClusterBus.publish`): the string is built
 * only when `msgId` is read (a hook, a trace), and de-duplication goes by the number (PB1).
 */
class NumberedPublication implements Publication {
  readonly origin: NodeId;
  readonly prefix: string;
  readonly n: number;
  readonly op: Operation;

  constructor(origin: NodeId, prefix: string, n: number, op: Operation) {
    this.origin = origin;
    this.prefix = prefix;
    this.n = n;
    this.op = op;
  }

  get msgId(): string {
    return this.prefix + this.n;
  }
}

/** An ordered entry; a numbered one builds its msgId string only if it is read (PB1). */
class Entry implements OrderedOperation {
  readonly seq: number;
  readonly origin: NodeId;
  readonly op: Operation;
  #msgId: string | null;
  readonly #prefix: string;
  readonly #n: number;

  /** `n` < 0: `id` is the msgId; otherwise the msgId is `id + n`. */
  constructor(seq: number, origin: NodeId, id: string, n: number, op: Operation) {
    this.seq = seq;
    this.origin = origin;
    this.op = op;
    this.#msgId = n < 0 ? id : null;
    this.#prefix = id;
    this.#n = n;
  }

  get msgId(): string {
    this.#msgId ??= this.#prefix + this.#n;
    return this.#msgId;
  }
}

/** The numbered ids (`prefix + n`) of one prefix that the order remembers. */
interface PrefixIds {
  /** Every number from 1 to here was ordered (a publisher numbers its ids 1, 2, 3…). */
  upTo: number;
  /** Numbers above `upTo + 1` ordered out of turn (held, lost and re-published), in two generations. */
  recent: Set<number>;
  older: Set<number>;
}

/**
 * The numbered msgIds remembered for de-duplication (PERF.md PB1). A publisher that numbers
 * its ids 1, 2, 3… and whose publications are ordered in turn costs one comparison per
 * publication: every number up to `upTo` was ordered. Numbers ordered out of turn (a
 * simulation hook held or lost one) are kept in sets in two generations, like the string
 * ids, until the gap below them fills: at least the last `window` of them are remembered.
 */
class NumberedIds {
  readonly #window: number;
  readonly #byPrefix = new Map<string, PrefixIds>();
  /** Numbers added to the current generation (every prefix's `recent`). */
  #size = 0;
  #lastPrefix: string | null = null;
  #last: PrefixIds | null = null;

  constructor(window: number) {
    this.#window = window;
  }

  #of(prefix: string): PrefixIds {
    if (prefix === this.#lastPrefix) return this.#last!;
    let ids = this.#byPrefix.get(prefix);
    if (!ids) {
      ids = { upTo: 0, recent: new Set(), older: new Set() };
      this.#byPrefix.set(prefix, ids);
    }
    this.#lastPrefix = prefix;
    this.#last = ids;
    return ids;
  }

  has(prefix: string, n: number): boolean {
    const ids = this.#of(prefix);
    if (n <= ids.upTo) return true;
    return (ids.recent.size > 0 && ids.recent.has(n)) || (ids.older.size > 0 && ids.older.has(n));
  }

  /** Remember `n` (not remembered yet: the caller asked `has`). */
  add(prefix: string, n: number): void {
    const ids = this.#of(prefix);
    if (n !== ids.upTo + 1) {
      ids.recent.add(n);
      if (++this.#size >= this.#window) this.#nextGeneration();
      return;
    }
    ids.upTo = n;
    // The gap filled: numbers ordered out of turn just above it join the run.
    while (ids.recent.size > 0 || ids.older.size > 0) {
      const next = ids.upTo + 1;
      if (!ids.recent.delete(next) && !ids.older.delete(next)) break;
      ids.upTo = next;
    }
  }

  /** The current generation becomes the older one; the older one is forgotten. */
  #nextGeneration(): void {
    this.#size = 0;
    for (const ids of this.#byPrefix.values()) {
      ids.older = ids.recent;
      ids.recent = new Set();
    }
  }
}

/** The shared total order. Members attach through `bus(nodeId)`. */
export class InProcessOrder {
  readonly #options: InProcessOrderOptions;
  readonly #dedupWindow: number;
  /** Retained entries: everything after the latest snapshot that a member may still need. */
  #entries: Entry[] = [];
  #lastSeq = 0;
  /**
   * msgId → seq in two generations: ids go into `#recentIds`; when it holds `dedupWindow`
   * ids it becomes `#olderIds` and the one before is dropped whole. So at least the last
   * `dedupWindow` ids are remembered, at one lookup and one insert per publication and no
   * deletes (a ring of ids with a delete per publication cost ~15 % of a request, PB1).
   */
  #recentIds = new Map<string, number>();
  #olderIds = new Map<string, number>();
  /** The same for numbered msgIds (members' publications), which never become strings. */
  readonly #numberedIds: NumberedIds;
  readonly #members = new Map<NodeId, InProcessBus>();
  /** `#members` as an array, for the delivery loop (replaced, never changed, on a change). */
  #memberList: InProcessBus[] = [];
  readonly #held: Publication[] = [];
  #snapshot: BusSnapshot | null = null;
  #pumping = false;

  constructor(options: InProcessOrderOptions = {}) {
    this.#options = options;
    this.#dedupWindow = options.dedupWindow ?? 8_192;
    this.#numberedIds = new NumberedIds(this.#dedupWindow);
    if (options.initialSnapshot) {
      this.#snapshot = options.initialSnapshot;
      this.#lastSeq = options.initialSnapshot.seq;
    }
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
    return this.#held;
  }

  /** Order the held publication at `index` now. */
  release(index = 0): void {
    const [held] = this.#held.splice(index, 1);
    if (!held) throw new Error(`no held publication at ${index}`);
    this.#order(held);
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
    this.#forgetHeld(node);
    this.#members.delete(node);
    this.#memberList = [...this.#members.values()];
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
    this.#memberList = [...this.#members.values()];
    const snapshot = this.#snapshot;
    return { snapshot, from: snapshot ? snapshot.seq + 1 : 1 };
  }

  detach(member: InProcessBus): void {
    if (this.#members.get(member.nodeId) === member) {
      this.#members.delete(member.nodeId);
      this.#memberList = [...this.#members.values()];
      this.#forgetHeld(member.nodeId);
    }
    this.#compact();
  }

  /**
   * A member that failed or left publishes nothing more: what the hook still holds of it
   * never reaches the order. Ordered after its departure, a RESUME of a dead node would
   * start a master resume whose I/O nobody performs, and the log would wait on it for ever
   * (found by server-sim, seed 0x7777). Over JetStream a publication lands seconds, not a
   * failure timeout, after it is sent, so one ordered after its node was declared failed
   * comes from a node that is alive (fenced out, re-joining) and does its own I/O.
   */
  #forgetHeld(node: NodeId): void {
    for (let i = this.#held.length - 1; i >= 0; i--) {
      if (this.#held[i]!.origin === node) this.#held.splice(i, 1);
    }
  }

  /**
   * A member's publication under the msgId `prefix + n` (ClusterBus.publish): without a
   * hook, no Publication object and no string (PB1); a hook decides its fate.
   */
  publish(origin: NodeId, prefix: string, n: number, op: Operation, onFailed: PublishFailed): void {
    const hook = this.#options.onPublish;
    if (!hook) {
      if (this.#numberedIds.has(prefix, n)) return; // a duplicate: delivered once only
      this.#numberedIds.add(prefix, n);
      this.#append(new Entry(++this.#lastSeq, origin, prefix, n, op));
      return;
    }
    const publication = new NumberedPublication(origin, prefix, n, op);
    if (this.#seqOf(publication) !== undefined) return;
    switch (hook(publication)) {
      case "order":
        this.#order(publication);
        return;
      case "duplicate":
        this.#order(publication);
        this.#held.push(publication);
        return;
      case "hold":
        this.#held.push(publication);
        return;
      case "drop": {
        const error = new Error(`publication ${publication.msgId} lost`);
        queueMicrotask(() => onFailed(error, op));
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
    // Kept as given, not copied (a 64 MiB copy is 40 ms of one turn, issue 15): the bus
    // owns a saved snapshot's bytes and nobody changes them after.
    this.#snapshot = { seq: snapshot.seq, bytes: snapshot.bytes };
    this.#options.onSnapshot?.(this.#snapshot);
    this.#compact();
  }

  /**
   * The seq of an earlier publication with this msgId, if remembered (for a numbered one,
   * -1: its seq is not kept, nothing asks for it).
   */
  #seqOf(publication: Publication): number | undefined {
    if (publication instanceof NumberedPublication) {
      return this.#numberedIds.has(publication.prefix, publication.n) ? -1 : undefined;
    }
    const msgId = publication.msgId;
    return this.#recentIds.get(msgId) ?? this.#olderIds.get(msgId);
  }

  #order(publication: Publication): number {
    const known = this.#seqOf(publication);
    if (known !== undefined) return known; // a duplicate: delivered once only
    const seq = ++this.#lastSeq;
    if (publication instanceof NumberedPublication) {
      this.#numberedIds.add(publication.prefix, publication.n);
      this.#append(
        new Entry(seq, publication.origin, publication.prefix, publication.n, publication.op),
      );
      return seq;
    }
    if (this.#recentIds.size >= this.#dedupWindow) {
      this.#olderIds = this.#recentIds;
      this.#recentIds = new Map();
    }
    this.#recentIds.set(publication.msgId, seq);
    this.#append(new Entry(seq, publication.origin, publication.msgId, -1, publication.op));
    return seq;
  }

  #append(entry: Entry): void {
    this.#entries.push(entry);
    this.#pump();
  }

  /** Deliver every retained entry each member has not seen yet, in order, one at a time. */
  #pump(): void {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      for (;;) {
        let progressed = false;
        const members = this.#memberList;
        for (let i = 0; i < members.length; i++) {
          const member = members[i]!;
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

  #nextFor(member: InProcessBus): Entry | undefined {
    if (!member.ready) return undefined;
    const first = this.#entries[0]?.seq;
    if (first === undefined) return undefined;
    return this.#entries[member.delivered + 1 - first];
  }

  /** Drop entries every member has seen and the latest snapshot covers. */
  #compact(): void {
    if (this.#pumping) return;
    const entries = this.#entries;
    if (entries.length === 0) return;
    let keepFrom = this.#snapshot ? this.#snapshot.seq + 1 : 1;
    const members = this.#memberList;
    for (let i = 0; i < members.length; i++) {
      keepFrom = Math.min(keepFrom, members[i]!.delivered + 1);
    }
    const first = entries[0]!.seq;
    if (keepFrom <= first) return;
    if (keepFrom - first >= entries.length) entries.length = 0;
    else entries.splice(0, keepFrom - first);
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

  publish(op: Operation, idPrefix: string, idNumber: number, onFailed: PublishFailed): void {
    if (this.#state !== "started") {
      const error = new Error("bus is not started");
      queueMicrotask(() => onFailed(error, op));
      return;
    }
    this.#order.publish(this.nodeId, idPrefix, idNumber, op, onFailed);
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
