import { describe, expect, it } from "vitest";
import { observeTrend, stallMs } from "./domain/sync-observer";

describe("progress-aware mirror state", () => {
  it("does not alarm while a mirror gains regions, and does once it stalls", () => {
    const t0 = 1_000_000;
    expect(observeTrend("m1", 10, 100, t0)).toBe("unknown");
    expect(observeTrend("m1", 20, 100, t0 + 5_000)).toBe("recovering");
    expect(observeTrend("m1", 20, 100, t0 + 5_000 + stallMs)).toBe("recovering");
    expect(observeTrend("m1", 20, 100, t0 + 5_001 + stallMs)).toBe("stalled");
    expect(observeTrend("m1", 21, 100, t0 + 6_000 + stallMs)).toBe("recovering");
    expect(observeTrend("m1", 100, 100, t0 + 7_000 + stallMs)).toBe("in-sync");
  });
  it("reports an in-sync mirror as in sync from the first look", () => {
    expect(observeTrend("m2", 50, 50, 0)).toBe("in-sync");
  });
});
