import { describe, expect, it } from "vitest";
import { formatDateTime, formatPfn, formatRange, formatTimeOfDay, formatUtc } from "./format";

describe("dates with their time zone", () => {
  const d = new Date("2026-12-03T06:43:59Z");
  it("names the zone it is shown in", () => {
    expect(formatDateTime(d, "UTC")).toBe("3 Dec 2026, 06:43:59 UTC");
    expect(formatDateTime(d, "Europe/Berlin")).toMatch(/07:43:59 (CET|GMT\+1)$/);
    expect(formatTimeOfDay(d, "UTC")).toBe("06:43 UTC");
    expect(formatUtc(d)).toBe("2026-12-03 06:43:59 UTC");
  });
});

describe("ranges as the kernel prints them", () => {
  it("pfns in hex, other units in decimal", () => {
    expect(formatRange("pfn", "32257", "32257")).toBe("pfn 0x7e01");
    expect(formatRange("pfn", "32256", "32271")).toBe("pfn 0x7e00–0x7e0f");
    expect(formatRange("sector", "2048", "2055")).toBe("sector 2048–2055");
    expect(formatRange(null, null, null)).toBeNull();
    expect(formatPfn("not a number")).toBe("not a number");
  });
});
