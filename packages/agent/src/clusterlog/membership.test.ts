import { describe, expect, it } from "vitest";
import { failureDeclarer, MembershipView, membershipMsgId, newIncarnation } from "./membership.ts";

describe("MembershipView", () => {
  it("follows joins, leaves and failures of the current run only", () => {
    const view = new MembershipView();
    expect(view.apply({ kind: "node-join", node: 2 }, "b1")).toBe(true);
    expect(view.apply({ kind: "node-join", node: 1 }, "a1")).toBe(true);
    expect(view.members().map((m) => m.node)).toEqual([1, 2]);
    // Node 2 restarted: a late failure of its earlier run must not remove the new one.
    view.apply({ kind: "node-join", node: 2 }, "b2");
    expect(view.apply({ kind: "node-failed", node: 2 }, "b1")).toBe(false);
    expect(view.incarnationOf(2)).toBe("b2");
    expect(view.apply({ kind: "node-failed", node: 2 }, "b2")).toBe(true);
    expect(view.apply({ kind: "node-leave", node: 1 }, "")).toBe(true);
    expect(view.members()).toEqual([]);
  });

  it("picks the lowest live member as the one declaring failures", () => {
    const members = [1, 2, 3].map((node) => ({ node, incarnation: `i${node}` }));
    expect(failureDeclarer(members, new Set([1]))).toBe(2);
    expect(failureDeclarer(members, new Set([2]))).toBe(1);
    expect(failureDeclarer(members, new Set([1, 2, 3]))).toBeNull();
  });

  it("gives two declarations of one failure the same message id", () => {
    expect(membershipMsgId.failed(3, "x")).toBe(membershipMsgId.failed(3, "x"));
    expect(membershipMsgId.failed(3, "x")).not.toBe(membershipMsgId.failed(3, "y"));
    expect(newIncarnation(1_700_000_000_000, () => 0.5)).toMatch(/^[0-9a-z]+-[0-9a-z]{6}$/);
  });
});
