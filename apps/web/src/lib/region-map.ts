/**
 * The out-of-sync region map (DASHBOARD.md "our edge" 3): one byte per region in, RGBA
 * pixels out. Pure, so it is tested and benchmarked outside the browser and drawn with
 * one putImageData inside it (PERF.md PB7: 2 M regions in ≤ 50 ms).
 *
 * When there are more regions than pixels, each pixel stands for a run of regions and
 * shows the worst state among them — an out-of-sync region is never hidden by its
 * in-sync neighbours. The states are the agent's (the contract's `regionState`).
 */
import type { TRegionState } from "@mirrorplane/contracts";

/** Severity order for "worst": recovering > marked > out of sync > in sync. */
const rank = new Uint8Array([0, 1, 2, 3]);

/** RGBA per state, matching the dashboard's palette. */
export const regionColors: Record<TRegionState, [number, number, number]> = {
  0: [38, 94, 52],
  1: [248, 81, 73],
  2: [210, 153, 34],
  3: [79, 163, 255],
};

const palette = new Uint32Array(4);
{
  const view = new DataView(palette.buffer);
  for (const [state, [r, g, b]] of Object.entries(regionColors)) {
    // Little-endian RGBA in one u32, as ImageData lays it out.
    view.setUint32(Number(state) * 4, (255 << 24) | (b << 16) | (g << 8) | r, true);
  }
}

export interface RegionMapImage {
  width: number;
  height: number;
  pixels: Uint8ClampedArray;
  regionsPerPixel: number;
}

export function renderRegionMap(states: Uint8Array, width: number, height: number): RegionMapImage {
  const pixelCount = width * height;
  const regionsPerPixel = Math.max(1, Math.ceil(states.length / pixelCount));
  const out = new Uint32Array(pixelCount);
  const background = 0xff1e1714; // the panel colour (#171e26) as little-endian RGBA
  out.fill(background);
  const used = Math.ceil(states.length / regionsPerPixel);
  for (let p = 0; p < used; p++) {
    const start = p * regionsPerPixel;
    const end = Math.min(states.length, start + regionsPerPixel);
    let worst = 0;
    for (let i = start; i < end && worst < 3; i++) {
      const s = states[i]! & 3;
      if (rank[s]! > worst) worst = rank[s]!;
    }
    out[p] = palette[worst]!;
  }
  return { width, height, pixels: new Uint8ClampedArray(out.buffer), regionsPerPixel };
}

/** Counts per state, for the legend. */
export function regionCounts(states: Uint8Array): [number, number, number, number] {
  const c: [number, number, number, number] = [0, 0, 0, 0];
  for (let i = 0; i < states.length; i++) c[(states[i]! & 3) as 0 | 1 | 2 | 3]++;
  return c;
}

export interface TRegionRun {
  first: number;
  last: number;
  /** The worst state in the run (1 out of sync, 2 marked, 3 recovering). */
  state: 1 | 2 | 3;
}

/**
 * Runs of regions not in sync, in region numbers (a bucket of several regions counts whole):
 * the region map's text alternative, and what a click or key selects for a plan.
 */
export function outOfSyncRuns(
  states: Uint8Array,
  regionsPerBucket: number,
  regionCount: number,
  limit = 50,
): TRegionRun[] {
  const runs: TRegionRun[] = [];
  let start = -1;
  let worst = 0;
  for (let b = 0; b <= states.length; b++) {
    const s = b < states.length ? states[b]! & 3 : 0;
    if (s !== 0) {
      if (start < 0) start = b;
      if (s > worst) worst = s;
      continue;
    }
    if (start >= 0) {
      runs.push({
        first: start * regionsPerBucket,
        last: Math.min(regionCount - 1, b * regionsPerBucket - 1),
        state: worst as 1 | 2 | 3,
      });
      if (runs.length >= limit) break;
      start = -1;
      worst = 0;
    }
  }
  return runs;
}
