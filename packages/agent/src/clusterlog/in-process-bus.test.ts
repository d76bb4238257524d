import type { Operation } from "@mirrorplane/clusterlog";
import { describe, expect, it } from "vitest";
import type { OrderedOperation } from "./bus.ts";
import { InProcessOrder } from "./in-process-bus.ts";

const op = (node: number): Operation => ({ kind: "node-join", node });

function member(order: InProcessOrder, node: number) {
  const seen: OrderedOperation[] = [];
  const failed: unknown[] = [];
  let reconnects = 0;
  const bus = order.bus(node);
  const started = bus.start({
    deliver: (e) => seen.push(e),
    reconnected: () => {
      reconnects++;
    },
  });
  /** Publishes `op` as `p<node>:` + `n`; the seq it got (-1: not in the order yet). */
  const publish = (operation: Operation, n: number): number => {
    const before = seen.length;
    bus.publish(operation, `p${node}:`, n, (error) => failed.push(error));
    return seen.length > before ? seen.at(-1)!.seq : -1;
  };
  return { bus, seen, started, failed, publish, reconnects: () => reconnects };
}

describe("InProcessOrder / InProcessBus", () => {
  it("orders publications 1, 2, 3… and delivers each once to every member, own join included", async () => {
    const order = new InProcessOrder();
    const a = member(order, 1);
    expect(await a.started).toBeNull();
    const b = member(order, 2);
    await b.started;
    expect(a.publish(op(7), 1)).toBe(3);
    expect(b.publish(op(8), 1)).toBe(4); // another prefix: its own numbers
    expect(a.seen.map((e) => e.msgId)).toEqual(["join:1:0", "join:2:1", "p1:1", "p2:1"]);
    expect(a.seen.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(b.seen.map((e) => e.seq)).toEqual([1, 2, 3, 4]); // joiner without snapshot replays all
    expect(a.seen.map((e) => e.op.kind === "node-join" && e.op.node)).toEqual([1, 2, 7, 8]);
    expect(order.liveMembers()).toEqual([1, 2]);
  });

  it("starts from a handed-over snapshot: members restore it, the order goes on after it", async () => {
    const handedOver = { seq: 41, bytes: new Uint8Array([7, 7, 7]) };
    const order = new InProcessOrder({ initialSnapshot: handedOver });
    const a = member(order, 1);
    expect(await a.started).toEqual(handedOver);
    expect(a.publish(op(7), 1)).toBe(43); // 42 is the member's own join
    expect(a.seen.map((e) => e.seq)).toEqual([42, 43]);
  });

  it("an id published before delivers nothing, in turn or out of turn", async () => {
    const order = new InProcessOrder();
    const a = member(order, 1);
    await a.started;
    expect(a.publish(op(5), 1)).toBe(2);
    expect(a.publish(op(6), 1)).toBe(-1);
    expect(a.publish(op(7), 3)).toBe(3); // out of turn (2 was held or lost)
    expect(a.publish(op(7), 3)).toBe(-1);
    expect(a.publish(op(8), 2)).toBe(4); // the gap fills
    expect(a.publish(op(8), 2)).toBe(-1);
    expect(a.seen).toHaveLength(4);
    expect(a.failed).toEqual([]);
  });

  it("publishing from inside deliver is ordered after the current delivery, never re-entrant", async () => {
    const order = new InProcessOrder();
    const log: string[] = [];
    const bus = order.bus(1);
    let depth = 0;
    await bus.start({
      deliver: (e) => {
        depth++;
        expect(depth).toBe(1);
        log.push(`in ${e.seq}`);
        if (e.seq === 2) bus.publish(op(9), "p", 2, () => {});
        log.push(`out ${e.seq}`);
        depth--;
      },
    });
    bus.publish(op(8), "p", 1, () => {});
    expect(log).toEqual(["in 1", "out 1", "in 2", "out 2", "in 3", "out 3"]);
  });

  it("hooks hold, duplicate and drop publications; reconnect asks the member to re-publish", async () => {
    const actions = ["hold", "duplicate", "drop"] as const;
    let next = 0;
    const order = new InProcessOrder({ onPublish: () => actions[next++] ?? "order" });
    const a = member(order, 1);
    await a.started;
    expect(a.publish(op(2), 1)).toBe(-1); // held
    expect(order.held.map((p) => p.msgId)).toEqual(["p1:1"]);
    expect(a.publish(op(3), 2)).toBe(2);
    expect(a.publish(op(4), 3)).toBe(-1); // lost: onFailed, never synchronously
    expect(a.failed).toEqual([]);
    await Promise.resolve();
    expect(a.failed).toHaveLength(1);
    expect(String(a.failed[0])).toMatch(/publication p1:3 lost/);
    order.release(1); // the duplicate of p1:2: de-duplicated
    expect(order.lastSeq).toBe(2);
    order.release(0);
    expect(a.seen.at(-1)).toMatchObject({ seq: 3, msgId: "p1:1" });
    order.reconnect(1);
    expect(a.reconnects()).toBe(1);
    expect(a.publish(op(4), 3)).toBe(4); // re-published after the reconnection
  });

  it("a joiner starts from the latest snapshot; older entries are compacted away", async () => {
    const order = new InProcessOrder();
    const a = member(order, 1);
    await a.started;
    for (let i = 1; i <= 5; i++) a.publish(op(10 + i), i);
    await a.bus.saveSnapshot({ seq: 4, bytes: new Uint8Array([4]) });
    expect(order.entries[0]!.seq).toBe(5);
    const b = member(order, 2);
    expect(await b.started).toEqual({ seq: 4, bytes: new Uint8Array([4]) });
    expect(b.seen.map((e) => e.seq)).toEqual([5, 6, 7]);
    await a.bus.saveSnapshot({ seq: 2, bytes: new Uint8Array([2]) }); // older: ignored
    expect(order.latestSnapshot!.seq).toBe(4);
  });

  it("fail() and close() write node-failed / node-leave into the order and detach the member", async () => {
    const order = new InProcessOrder();
    const a = member(order, 1);
    const b = member(order, 2);
    const c = member(order, 3);
    await Promise.all([a.started, b.started, c.started]);
    order.fail(2);
    await c.bus.close();
    expect(order.liveMembers()).toEqual([1]);
    expect(a.seen.slice(-2).map((e) => e.op.kind)).toEqual(["node-failed", "node-leave"]);
    const seenByB = b.seen.length;
    a.publish(op(9), 1);
    expect(b.seen.length).toBe(seenByB);
    expect(c.publish(op(9), 1)).toBe(-1);
    await Promise.resolve();
    expect(String(c.failed[0])).toMatch(/not started/);
  });
});
