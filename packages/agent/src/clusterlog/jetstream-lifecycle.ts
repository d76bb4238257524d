import { BusError } from "./jetstream-common.ts";

/**
 * Where a JetStream member is in its life (one value instead of the flags `joined`,
 * `rejoining`, `closing` and `closed` it once had):
 *
 *     idle ──start──▶ starting ──join delivered──▶ joined ◀──re-joined (or gave up)──┐
 *                                                   │                               │
 *                                                   └──fenced out──▶ rejoining ─────┘
 *     idle | starting | joined | rejoining ──close / abort──▶ closing ──shutdown──▶ closed
 *
 * - `starting`: `start` runs (connect, buckets, snapshot, catch up, join).
 * - `joined`: our `node-join` was delivered; heartbeats run; a reconnect asks the owner
 *   to re-publish (`BusHandlers.reconnected`).
 * - `rejoining`: we were declared failed while running and join again as a new run;
 *   still a member for everything else; being fenced again meanwhile starts no second
 *   re-join.
 * - `closing`: `close` (leave, delete the heartbeat, drain) or `abort` began.
 * - `closed`: the connection is being (or was) shut down; publications fail "bus closed".
 *
 * A failure of the order (a gap, the stream went back) is not a state of its own: the
 * member goes on heartbeating and closes as usual, it only delivers and publishes nothing
 * more (`StreamConsumer.failure`). The NATS connection being down is not either: it comes
 * and goes in every state (`JetStreamBus.connected`). The other two flags were the
 * heartbeats' own: a round in progress (`Heartbeats`' guard against overlapping rounds),
 * and "reconnected", now the quiet period's `Infinity` until our next heartbeat.
 */
export type BusState = "idle" | "starting" | "joined" | "rejoining" | "closing" | "closed";

const TRANSITIONS: { readonly [S in BusState]: readonly BusState[] } = {
  idle: ["starting", "closing"],
  starting: ["joined", "closing"],
  joined: ["rejoining", "closing"],
  rejoining: ["joined", "closing"],
  closing: ["closed"],
  closed: [],
};

export class BusLifecycle {
  #state: BusState = "idle";

  get state(): BusState {
    return this.#state;
  }

  /** Moves to `next`; anything but the transitions above is a bug. */
  to(next: BusState): void {
    if (!TRANSITIONS[this.#state].includes(next)) {
      throw new BusError(`bus state ${this.#state} cannot become ${next}`);
    }
    this.#state = next;
  }

  /** Moves from `from` to `next` if the member is in `from`; false (no move) otherwise. */
  advance(from: BusState, next: BusState): boolean {
    if (this.#state !== from) return false;
    this.to(next);
    return true;
  }

  /** Joined (or re-joining) and not closing. */
  get member(): boolean {
    return this.#state === "joined" || this.#state === "rejoining";
  }

  /** `close` or `abort` was called (closing or closed). */
  get closing(): boolean {
    return this.#state === "closing" || this.#state === "closed";
  }

  get closed(): boolean {
    return this.#state === "closed";
  }

  /** `value` (a client set up by `start`), or "bus closed" / "bus not started". */
  requireOpen<T>(value: T | null): T {
    if (this.closed) throw new BusError("bus closed");
    if (value === null) throw new BusError("bus not started");
    return value;
  }
}
