import { describe, expect, it } from "vitest";
import { freshness } from "./freshness";

describe("freshness", () => {
  const now = new Date("2026-01-01T00:01:00Z");
  const ago = (ms: number) => new Date(now.getTime() - ms);
  it("is fresh within one interval, late after one missed, unknown after three", () => {
    expect(freshness(ago(0), 10_000, now)).toBe("fresh");
    expect(freshness(ago(11_000), 10_000, now)).toBe("fresh"); // within grace
    expect(freshness(ago(15_000), 10_000, now)).toBe("late");
    expect(freshness(ago(31_000), 10_000, now)).toBe("late");
    expect(freshness(ago(33_000), 10_000, now)).toBe("unknown");
  });
  it("scales the grace with short intervals", () => {
    expect(freshness(ago(1_600), 1_000, now)).toBe("late");
    expect(freshness(ago(3_600), 1_000, now)).toBe("unknown");
  });
});
