import { describe, expect, it } from "vitest";
import { eventMessage } from "./event-rows";

describe("resync event messages carry what is in their data", () => {
  it("a throttle names its value; start and cancel name the operator", () => {
    expect(
      eventMessage("resync", "resync of LVM-a throttle set", {
        what: "throttle",
        regionsPerSecond: 1000,
      }),
    ).toBe("resync of LVM-a throttle set to 1,000 regions/s");
    expect(
      eventMessage("resync", "resync of LVM-a throttle set", {
        what: "throttle",
        regionsPerSecond: null,
      }),
    ).toBe("resync of LVM-a throttle set: none (unthrottled)");
    expect(
      eventMessage("resync", "resync of LVM-a regions 0–9 started", {
        what: "start",
        actor: "otto",
      }),
    ).toBe("resync of LVM-a regions 0–9 started by otto");
    expect(eventMessage("resync", "resync of LVM-a started", { what: "start", actor: null })).toBe(
      "resync of LVM-a started",
    );
    expect(eventMessage("memory_failure", "x", { what: "throttle" })).toBe("x");
  });
});
