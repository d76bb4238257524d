import type { Operation } from "@mirrorplane/clusterlog";
import { describe, expect, it } from "vitest";
import type { OrderedOperation } from "./bus.ts";
import { InProcessOrder } from "./in-process-bus.ts";

const op = (node: number): Operation => ({ kind: "node-join", node });

function member(order: InProcessOrder, node: number) {
  const seen: OrderedOperation[] = [];
  let reconnects = 0;
  const bus = order.bus(node);
  const started = bus.start({
    deliver: (e) => seen.push(e),
    reconnected: () => {
      reconnects++;
    },
  });
  return { bus, seen, started, reconnects: () => reconnects };
}

describe("InProcessOrder / InProcessBus", () => {
  it("orders publications 1, 2, 3… and delivers each once to every member, own join included", async () => {
    const order = new InProcessOrder();
    const a = member(order, 1);
    expect(await a.started).toBeNull();
    const b = member(order, 2);
    await b.started;
    expect(await a.bus.publish(op(7), "x")).toBe(3);
    expect(await b.bus.publish(op(8), "y")).toBe(4);
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
    expect(await a.bus.publish(op(7), "x")).toBe(43); // 42 is the member's own join
    expect(a.seen.map((e) => e.seq)).toEqual([42, 43]);
  });

  it("a msgId seen before resolves with the original seq and delivers nothing", async () => {
    const order = new InProcessOrder();
    const a = member(order, 1);
    await a.started;
    const first = await a.bus.publish(op(5), "same");
    expect(await a.bus.publish(op(6), "same")).toBe(first);
    expect(a.seen).toHaveLength(2);
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
        if (e.seq === 2) void bus.publish(op(9), "nested");
        log.push(`out ${e.seq}`);
        depth--;
      },
    });
    await bus.publish(op(8), "outer");
    expect(log).toEqual(["in 1", "out 1", "in 2", "out 2", "in 3", "out 3"]);
  });

  it("hooks hold, duplicate and drop publications; reconnect asks the member to re-publish", async () => {
    const actions = ["hold", "duplicate", "drop"] as const;
    let next = 0;
    const order = new InProcessOrder({ onPublish: () => actions[next++] ?? "order" });
    const a = member(order, 1);
    await a.started;
    const held = a.bus.publish(op(2), "h");
    expect(order.held).toHaveLength(1);
    expect(await a.bus.publish(op(3), "d")).toBe(2);
    await expect(a.bus.publish(op(4), "lost")).rejects.toThrow(/lost/);
    order.release(1); // the duplicate of "d": de-duplicated
    expect(order.lastSeq).toBe(2);
    order.release(0);
    expect(await held).toBe(3);
    order.reconnect(1);
    expect(a.reconnects()).toBe(1);
  });

  it("a joiner starts from the latest snapshot; older entries are compacted away", async () => {
    const order = new InProcessOrder();
    const a = member(order, 1);
    await a.started;
    for (let i = 0; i < 5; i++) await a.bus.publish(op(10 + i), `m${i}`);
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
    await a.bus.publish(op(9), "after");
    expect(b.seen.length).toBe(seenByB);
    await expect(c.bus.publish(op(9), "closed")).rejects.toThrow();
  });
});
