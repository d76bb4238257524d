import { describe, expect, it } from "vitest";
import { formatEta, formatPercent } from "./eta";

describe("honest progress", () => {
  it("shows a range, or no estimate when the rate is unknown", () => {
    expect(formatEta(600, "running")).toBe("8 min – 13 min");
    expect(formatEta(null, "running")).toBe("no estimate");
    expect(formatEta(-5, "running")).toBe("no estimate");
    expect(formatEta(Number.POSITIVE_INFINITY, "running")).toBe("no estimate");
    expect(formatEta(10, "done")).toBe("done");
    expect(formatEta(10, "paused")).toBe("paused");
  });
  it("never shows impossible numbers", () => {
    expect(formatPercent(104, true)).toBe("100.0 %");
    expect(formatPercent(-3, false)).toBe("0.0 %");
    expect(formatPercent(99.99, false)).toBe("99.9 %");
    expect(formatPercent(100, true)).toBe("100.0 %");
    expect(formatPercent(Number.NaN, false)).toBe("—");
  });
});
