import { Bitmap, type LogGroup, NO_REGION } from "@mirrorplane/clusterlog";
import { describe, expect, it } from "vitest";
import { regionMap } from "./region-map.ts";

function group(
  regionCount: number,
  opts: { outOfSync?: number[]; marked?: number[]; recovering?: number },
): LogGroup {
  const syncBits = new Bitmap(regionCount);
  for (let r = 0; r < regionCount; r++) syncBits.set(r);
  for (const r of opts.outOfSync ?? []) syncBits.clear(r);
  return {
    regionCount,
    syncBits,
    markers: new Map((opts.marked ?? []).map((r) => [r, [1]])),
    recoveringRegion: opts.recovering ?? NO_REGION,
  } as unknown as LogGroup;
}

describe("region map on the agent", () => {
  it("gives one bucket per region when they fit", () => {
    const map = regionMap(group(8, { outOfSync: [1, 3], marked: [5], recovering: 3 }), 100);
    expect(map.regionsPerBucket).toBe(1);
    expect(Array.from(map.buckets)).toEqual([0, 1, 0, 3, 0, 2, 0, 0]);
  });

  it("reduces millions of regions to the bucket budget, worst state first", () => {
    const map = regionMap(group(20_000_000, { outOfSync: [19_999_999, 7], marked: [8] }), 100_000);
    expect(map.regionsPerBucket).toBe(200);
    expect(map.buckets.length).toBe(100_000);
    expect(map.buckets[0]).toBe(2); // region 7 out of sync and 8 marked: marked wins
    expect(map.buckets[99_999]).toBe(1);
    expect(map.buckets.reduce((n, b) => n + (b ? 1 : 0), 0)).toBe(2);
  });
});
