import type { NodeId, Operation } from "@mirrorplane/clusterlog";
import type { KV } from "@nats-io/kv";
import { type BusLogger, sleep } from "./jetstream-common.ts";
import type { BusLifecycle } from "./jetstream-lifecycle.ts";
import { failureDeclarer, type MembershipView, membershipMsgId } from "./membership.ts";

// The JetStream bus's failure detection: every member's heartbeat is a key in a KV bucket
// whose max age is the failure timeout; a member whose key has expired (or names another
// run of that node id) is dead. The lowest live member declares it with `node-failed` and
// message id `failed:<node>:<incarnation>`, so a second declarer's copy collapses into the
// first. Each round also runs the consumer's watchdog.

export interface HeartbeatsOptions {
  readonly nodeId: NodeId;
  readonly failureTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly log: BusLogger;
  readonly lifecycle: BusLifecycle;
  /** This run's incarnation (what our key holds; changes on a re-join). */
  readonly incarnation: () => string;
  /** Membership as of the last delivered operation. */
  readonly view: () => MembershipView;
  readonly publish: (op: Operation, msgId: string, incarnation: string) => Promise<number>;
  /** The consumer's check of its position against the stream's, once a round. */
  readonly watchdog: () => Promise<void>;
}

function heartbeatKey(node: NodeId): string {
  return `node.${node}`;
}

export class Heartbeats {
  readonly #o: HeartbeatsOptions;
  #kv: KV | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  /** A round is running (the timer does not start a second one). */
  #inRound = false;
  /**
   * No one is judged before this time. `Infinity` after a reconnect: until our own
   * heartbeat is written again by a round, then one full timeout from that moment.
   */
  #quietUntil = 0;
  /** When a round last wrote our heartbeat (0: not yet), to notice that we were held up. */
  #lastBeatAt = 0;
  /** When our heartbeat was last written, by anything (0: not yet). */
  #writtenAt = 0;
  /** The members whose heartbeat the last round found stale. */
  #deadSeen = new Set<NodeId>();
  /** Failure declarations in flight, by message id. */
  #declaring = new Set<string>();

  constructor(options: HeartbeatsOptions) {
    this.#o = options;
  }

  /** The bucket `start` opened. */
  open(kv: KV): void {
    this.#kv = kv;
  }

  /** When our heartbeat was last written (0: not yet). */
  get writtenAt(): number {
    return this.#writtenAt;
  }

  /** Whether the last round found `node`'s heartbeat stale (until it joins again). */
  presumedDead(node: NodeId): boolean {
    return this.#deadSeen.has(node);
  }

  /** `node` joined (again): its heartbeat is no longer held stale. */
  joined(node: NodeId): void {
    this.#deadSeen.delete(node);
  }

  async put(): Promise<void> {
    await this.#kv?.put(heartbeatKey(this.#o.nodeId), this.#o.incarnation());
    this.#writtenAt = Date.now();
  }

  /** Deletes our key (a graceful leave); undefined before `open`. */
  deleteOwn(): Promise<void> | undefined {
    return this.#kv?.delete(heartbeatKey(this.#o.nodeId));
  }

  /** Rounds every heartbeat interval, from the moment our join is delivered. */
  startRounds(): void {
    this.#timer = setInterval(() => void this.#round(), this.#o.heartbeatIntervalMs);
  }

  stopRounds(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /**
   * The connection came back. Others may have been cut off as long as we were: give every
   * member one full timeout to refresh its heartbeat (counted from our next round) before
   * anyone is declared failed.
   */
  reconnected(): void {
    this.#quietUntil = Number.POSITIVE_INFINITY;
  }

  /**
   * Writes our heartbeat as soon as the server takes it again, without waiting for a round
   * that may still hang on a request sent before the disconnect: the others' quiet period
   * starts when *their* heartbeat is written, so ours must not lag behind it.
   */
  async refreshAfterReconnect(): Promise<void> {
    for (let attempt = 0; attempt < 20 && !this.#o.lifecycle.closing; attempt++) {
      try {
        await this.put();
        return;
      } catch {
        await sleep(Math.min(this.#o.heartbeatIntervalMs, 100));
      }
    }
  }

  async #round(): Promise<void> {
    const { lifecycle, log, nodeId } = this.#o;
    if (this.#inRound || lifecycle.closing) return;
    this.#inRound = true;
    try {
      await this.put();
      const now = Date.now();
      if (this.#lastBeatAt > 0 && now - this.#lastBeatAt > 2 * this.#o.heartbeatIntervalMs) {
        // We ourselves were held up (a long pause of this process, a starved machine, a
        // publish retried across a NATS hiccup): the others' heartbeats may have lapsed for
        // the same reason, since agents sharing a host or a network stall together. Judge
        // no one until every member has had one full timeout from now to refresh.
        this.#quietUntil = Math.max(this.#quietUntil, now + this.#o.failureTimeoutMs);
        log.warn(
          { gapMs: now - this.#lastBeatAt },
          "heartbeat was late: no failure declared for one timeout",
        );
      }
      this.#lastBeatAt = now;
      if (this.#quietUntil === Number.POSITIVE_INFINITY) {
        // Reconnected, and our heartbeat is written again, so the others' can be too: give
        // every member one full timeout from now before anyone is declared failed.
        this.#quietUntil = Date.now() + this.#o.failureTimeoutMs;
      }
      await this.#o.watchdog();
      // (Rounds run only once our join was delivered.)
      const kv = this.#kv;
      if (!kv || Date.now() < this.#quietUntil) return;
      const view = this.#o.view();
      const members = view.members();
      const dead = new Set<NodeId>();
      for (const m of members) {
        if (m.node === nodeId) continue;
        const entry = await kv.get(heartbeatKey(m.node));
        const beat = entry && entry.operation === "PUT" ? entry.string() : null;
        if (beat !== m.incarnation) dead.add(m.node);
      }
      this.#deadSeen = dead;
      if (dead.size === 0 || lifecycle.closing) return;
      if (failureDeclarer(members, dead) !== nodeId) return;
      for (const node of dead) {
        const incarnation = this.#o.view().incarnationOf(node);
        if (incarnation === undefined) continue;
        const msgId = membershipMsgId.failed(node, incarnation);
        if (this.#declaring.has(msgId)) continue;
        this.#declaring.add(msgId);
        log.warn({ node, incarnation }, "heartbeat expired: declaring member failed");
        this.#o
          .publish({ kind: "node-failed", node }, msgId, incarnation)
          .catch((error) => {
            if (!lifecycle.closed) log.error({ err: error, node }, "could not declare failure");
          })
          .finally(() => this.#declaring.delete(msgId));
      }
    } catch (error) {
      if (!lifecycle.closed) log.warn({ err: error }, "heartbeat round failed");
    } finally {
      this.#inRound = false;
    }
  }
}
