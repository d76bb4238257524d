import { regionState as RegionState } from "@mirrorplane/contracts";
import { describe, expect, it } from "vitest";
import { outOfSyncRuns, regionColors, regionCounts, renderRegionMap } from "./region-map";

const rgba = (img: { pixels: Uint8ClampedArray }, p: number) =>
  Array.from(img.pixels.slice(p * 4, p * 4 + 4));

describe("region map rendering", () => {
  it("draws one pixel per region when they fit", () => {
    const states = new Uint8Array([0, 1, 2, 3]);
    const img = renderRegionMap(states, 2, 2);
    expect(img.regionsPerPixel).toBe(1);
    for (let i = 0; i < 4; i++)
      expect(rgba(img, i)).toEqual([...regionColors[states[i] as 0 | 1 | 2 | 3], 255]);
  });

  it("never hides an out-of-sync region among in-sync neighbours when aggregating", () => {
    const states = new Uint8Array(2_000_000); // all in sync
    states[1_234_567] = RegionState.outOfSync;
    const img = renderRegionMap(states, 1000, 200);
    expect(img.regionsPerPixel).toBe(10);
    const p = Math.floor(1_234_567 / 10);
    expect(rgba(img, p)).toEqual([...regionColors[RegionState.outOfSync], 255]);
    expect(rgba(img, p + 1)).toEqual([...regionColors[RegionState.inSync], 255]);
    expect(regionCounts(states)).toEqual([1_999_999, 1, 0, 0]);
  });

  it("shows the worst state of a pixel's regions: recovering > marked > out of sync", () => {
    const img = renderRegionMap(new Uint8Array([1, 2, 0, 0, 1, 3, 0, 0]), 2, 1);
    expect(img.regionsPerPixel).toBe(4);
    expect(rgba(img, 0)).toEqual([...regionColors[RegionState.marked], 255]);
    expect(rgba(img, 1)).toEqual([...regionColors[RegionState.recovering], 255]);
  });

  it("leaves pixels past the last region as background", () => {
    const img = renderRegionMap(new Uint8Array([1]), 3, 1);
    expect(rgba(img, 2)).toEqual([0x14, 0x17, 0x1e, 255]);
  });
});

describe("out-of-sync runs (the map's text alternative)", () => {
  it("joins neighbouring buckets, keeps the worst state, in region numbers", () => {
    const s = Uint8Array.from([0, 1, 1, 0, 3, 2, 0, 1]);
    expect(outOfSyncRuns(s, 1, 8)).toEqual([
      { first: 1, last: 2, state: 1 },
      { first: 4, last: 5, state: 3 },
      { first: 7, last: 7, state: 1 },
    ]);
    // Buckets of 4 regions; the last bucket is short.
    expect(outOfSyncRuns(Uint8Array.from([0, 1, 1]), 4, 10)).toEqual([
      { first: 4, last: 9, state: 1 },
    ]);
    expect(outOfSyncRuns(Uint8Array.from([1, 0, 1, 0, 1]), 1, 5, 2)).toHaveLength(2);
    expect(outOfSyncRuns(new Uint8Array(5), 1, 5)).toEqual([]);
  });
});
