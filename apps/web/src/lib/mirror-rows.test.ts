import { describe, expect, it } from "vitest";
import { matchesFilter, sortMirrors, type TMirrorRow } from "./mirror-rows";

const row = (over: Partial<TMirrorRow>): TMirrorRow => ({
  uuid: "LVM-x",
  name: null,
  regionCount: 100,
  percent: 100,
  nodes: ["n1"],
  logType: "clustered-disk",
  regionBytes: 4096,
  sizeBytes: 409_600,
  inSync: 100,
  legs: [
    { device: "dm-3", label: "vg-lv_mimage_0", health: "A" },
    { device: "dm-4", label: "vg-lv_mimage_1", health: "A" },
  ],
  ...over,
});

describe("sorting the mirrors list", () => {
  const rows = [
    row({ uuid: "b", sizeBytes: 2048, regionBytes: null }),
    row({ uuid: "a", sizeBytes: null, regionBytes: 8192 }),
    row({ uuid: "c", sizeBytes: 1024, regionBytes: 4096 }),
  ];
  it("keeps the server's order without a column, and nulls last either way", () => {
    expect(sortMirrors(rows, null, false).map((r) => r.uuid)).toEqual(["b", "a", "c"]);
    expect(sortMirrors(rows, "size", false).map((r) => r.uuid)).toEqual(["c", "b", "a"]);
    expect(sortMirrors(rows, "size", true).map((r) => r.uuid)).toEqual(["b", "c", "a"]);
    expect(sortMirrors(rows, "regionSize", true).map((r) => r.uuid)).toEqual(["a", "c", "b"]);
  });

  it("sorts by legs with errors, unknown legs last", () => {
    const legs = [
      row({ uuid: "dead", legs: [{ device: "dm-3", label: null, health: "D" }] }),
      row({ uuid: "unknown", legs: null }),
      row({ uuid: "fine" }),
    ];
    expect(sortMirrors(legs, "legs", true).map((r) => r.uuid)).toEqual(["dead", "fine", "unknown"]);
  });
});

describe("filtering the mirrors list", () => {
  it("matches names, devices, dm names, log types and nodes, every word", () => {
    expect(matchesFilter(row({}), "")).toBe(true);
    expect(matchesFilter(row({}), "mimage_1")).toBe(true);
    expect(matchesFilter(row({}), "DISK n1")).toBe(true);
    expect(matchesFilter(row({}), "core")).toBe(false);
    expect(matchesFilter(row({}), "disk n2")).toBe(false);
  });

  it("a single health character finds mirrors with a leg in that state", () => {
    const dead = row({ legs: [{ device: "sdb", label: null, health: "D" }] });
    expect(matchesFilter(dead, "D")).toBe(true);
    expect(matchesFilter(row({}), "D")).toBe(false);
    expect(matchesFilter(row({}), "A")).toBe(true);
  });
});
