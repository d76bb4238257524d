import { describe, expect, it } from "vitest";
import { membershipEvents } from "./membership-events.ts";

describe("membership changes as events", () => {
  const ctx = { nodeId: "host-2", self: 2, now: 5 };
  it("names who failed and who declared it, and each log's serving node", () => {
    const events = membershipEvents(
      [
        { kind: "node-join", node: 3, by: 3, seq: 10, at: 1 },
        { kind: "node-failed", node: 1, by: 2, seq: 11, at: 2 },
        { kind: "server", node: 2, by: 1, seq: 11, at: 2, uuid: "LVM-x" },
        { kind: "node-failed", node: 2, by: 3, seq: 12, at: 3 },
      ],
      ctx,
    );
    expect(events.map((e) => [e.severity, e.message])).toEqual([
      ["notice", "cluster member 3 joined"],
      ["warning", "cluster member 1 declared failed by node 2"],
      ["notice", "log LVM-x served by node 2 (was node 1)"],
      ["error", "this member (2) was declared failed by node 3: fenced out, re-joining"],
    ]);
    expect(events.every((e) => e.kind === "agent" && e.data.what === "membership")).toBe(true);
    // The same history replayed after a restart gives the same keys (stored once).
    const again = membershipEvents([{ kind: "node-join", node: 3, by: 3, seq: 10, at: 99 }], ctx);
    expect(again[0]!.key).toBe(events[0]!.key);
  });
});
