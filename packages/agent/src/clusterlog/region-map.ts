import { type LogGroup, NO_REGION } from "@mirrorplane/clusterlog";
import { regionState } from "@mirrorplane/contracts";

export interface RegionMapSummary {
  regionCount: number;
  regionsPerBucket: number;
  /** One byte per bucket: the worst state of its regions (recovering > marked > out of sync). */
  buckets: Uint8Array;
}

/**
 * The map of a log's regions (each bucket a contract `regionState`), reduced to at most
 * `maxBuckets` buckets on the agent so a 20 M-region mirror costs the browser kilobytes,
 * not megabytes. Visits only out-of-sync
 * regions (word-level search), marked regions and the recovering one: never a per-region
 * pass over an in-sync bitmap.
 */
export function regionMap(group: LogGroup, maxBuckets: number): RegionMapSummary {
  const regionsPerBucket = Math.max(1, Math.ceil(group.regionCount / Math.max(1, maxBuckets)));
  const buckets = new Uint8Array(Math.ceil(group.regionCount / regionsPerBucket));
  const raise = (region: number, state: number) => {
    const b = Math.floor(region / regionsPerBucket);
    if (buckets[b]! < state) buckets[b] = state;
  };
  for (
    let r = group.syncBits.findNextZero(0);
    r >= 0 && r < group.regionCount;
    r = group.syncBits.findNextZero(r + 1)
  ) {
    raise(r, regionState.outOfSync);
  }
  for (const region of group.markers.keys()) raise(region, regionState.marked);
  if (group.recoveringRegion !== NO_REGION && group.recoveringRegion < group.regionCount) {
    raise(group.recoveringRegion, regionState.recovering);
  }
  return { regionCount: group.regionCount, regionsPerBucket, buckets };
}
