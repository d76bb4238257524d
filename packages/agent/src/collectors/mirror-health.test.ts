import { describe, expect, it } from "vitest";
import type { MirrorInfo } from "../mirrors/inventory.ts";
import { withRoles } from "../mirrors/inventory.ts";
import { mirrorHealthEvents, mirrorsSeenAfter } from "./mirror-health.ts";

const ctx = { nodeId: "n1", bootId: "b1", now: 1_000 };

function mirror(health: string[], healthKnown = true): MirrorInfo {
  return {
    healthKnown,
    name: "vg0-data",
    logUuid: "LVM-abc",
    logType: "clustered-core",
    regionSectors: 1024,
    sizeSectors: 1 << 20,
    logDevice: null,
    legs: withRoles(
      health.map((h, i) => ({
        device: `dm-${i + 3}`,
        label: `vg0-data_mimage_${i}`,
        majorMinor: `253:${i + 3}`,
        health: h as MirrorInfo["legs"][number]["health"],
        underlying: [],
      })),
    ),
  };
}

describe("mirror leg health (dm-raid1's status characters)", () => {
  it("reports a leg that leaves A as that mirror leg's device failure, once", () => {
    const first = mirrorHealthEvents(null, [mirror(["A", "A"])], ctx);
    expect(first).toEqual([]);
    const failed = mirrorHealthEvents([mirror(["A", "A"])], [mirror(["A", "D"])], ctx);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      kind: "device_failure",
      severity: "critical",
      device: "dm-4",
      mirror: "vg0-data",
      leg: "dm-4",
      message: "mirror vg0-data: leg dm-4 dead: a write failed (dm-raid1 health A → D)",
      data: { what: "mirror_leg_health", health: "D", previous: "A", legsAlive: 1, legs: 2 },
    });
    // Unchanged: nothing more.
    expect(mirrorHealthEvents([mirror(["A", "D"])], [mirror(["A", "D"])], ctx)).toEqual([]);
  });

  it("a leg already failed when the agent starts is reported with a key its restart re-derives", () => {
    const a = mirrorHealthEvents(null, [mirror(["A", "S"])], ctx);
    const b = mirrorHealthEvents(null, [mirror(["A", "S"])], { ...ctx, now: 9_999 });
    expect(a).toHaveLength(1);
    expect(a[0]!.key).toBe(b[0]!.key);
    expect(a[0]!.severity).toBe("critical");
  });

  it("a read failure is an error, a new table's alive leg a recovery", () => {
    const read = mirrorHealthEvents([mirror(["A", "A"])], [mirror(["R", "A"])], ctx);
    expect(read[0]).toMatchObject({ severity: "error", device: "dm-3" });
    const back = mirrorHealthEvents([mirror(["A", "D"])], [mirror(["A", "A"])], ctx);
    expect(back[0]).toMatchObject({ kind: "device_recovered", severity: "notice", device: "dm-4" });
  });

  it("a table reloaded between `table` and `status` raises nothing, and its next read no recovery", () => {
    // Kernel lab, leg-failure: the repair's reload raced a sample; both legs read U.
    const failed = [mirror(["A", "D"])];
    const racing = [mirror(["U", "U"], false)];
    expect(mirrorHealthEvents(failed, racing, ctx)).toEqual([]);
    const seen = mirrorsSeenAfter(failed, racing);
    expect(seen).toEqual(failed);
    expect(mirrorHealthEvents(seen, [mirror(["A", "D"])], ctx)).toEqual([]);
    // Never seen before and unknown now: first sight waits for a read that is known.
    expect(mirrorsSeenAfter(null, racing)).toEqual([]);
  });
});
