import type { TResyncProgress } from "@mirrorplane/contracts";
import type { LiveMirror } from "./live-state";

// Test fixtures of the live stream's mirror state (live-state.test.ts, lib/live-apply.test.ts):
// a mirror of 100 regions and its run.

/** A running resync of regions 0–99 of mirror m1, 40 in sync; `p` overrides. */
export const liveRun = (p: Partial<TResyncProgress> = {}): TResyncProgress => ({
  uuid: "m1",
  id: "r1",
  state: "running",
  first: 0,
  last: 99,
  total: 100,
  inSync: 40,
  percent: 40,
  rate: 10,
  etaSeconds: 6,
  recoveringNode: 1,
  recoveringRegion: 40,
  throttle: null,
  startedAt: 1_000,
  endedAt: null,
  logInSync: 40,
  regionCount: 100,
  ...p,
});

/** The stream's view of that mirror with `inSync` regions in sync and this run. */
export const liveMirror = (
  inSync: number,
  resync: TResyncProgress | null,
  facts = "f1",
): LiveMirror => ({
  sync: {
    regionCount: 100,
    inSync,
    resyncId: resync?.state === "running" ? resync.id : null,
    trend: inSync === 100 ? "in-sync" : "recovering",
  },
  resync,
  facts,
});
