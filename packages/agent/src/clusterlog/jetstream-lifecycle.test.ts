import { describe, expect, it } from "vitest";
import { BusLifecycle } from "./jetstream-lifecycle.ts";

describe("the JetStream member's lifecycle", () => {
  it("goes idle → starting → joined ⇄ rejoining → closing → closed", () => {
    const l = new BusLifecycle();
    expect(l.state).toBe("idle");
    l.to("starting");
    expect(l.member).toBe(false);
    l.to("joined");
    expect(l.member).toBe(true);
    expect(l.advance("joined", "rejoining")).toBe(true);
    expect(l.advance("joined", "rejoining")).toBe(false); // one re-join at a time
    expect(l.member).toBe(true);
    l.to("joined");
    l.to("closing");
    expect([l.member, l.closing, l.closed]).toEqual([false, true, false]);
    expect(l.advance("rejoining", "joined")).toBe(false); // a re-join ending after close
    l.to("closed");
    expect([l.closing, l.closed]).toEqual([true, true]);
  });

  it("refuses any other transition", () => {
    const l = new BusLifecycle();
    expect(() => l.to("joined")).toThrow(/idle cannot become joined/);
    l.to("closing");
    expect(() => l.to("starting")).toThrow();
    l.to("closed");
    expect(() => l.to("closing")).toThrow();
  });

  it("requireOpen: bus not started, then bus closed", () => {
    const l = new BusLifecycle();
    expect(() => l.requireOpen(null)).toThrow("bus not started");
    expect(l.requireOpen(1)).toBe(1);
    l.to("closing");
    l.to("closed");
    expect(() => l.requireOpen(1)).toThrow("bus closed");
  });
});
