import { describe, expect, it } from "vitest";
import {
  describeCancel,
  outOfSyncOutside,
  outOfSyncSpan,
  resyncEtaSeconds,
  resyncStateLabel,
  type TResyncShape,
} from "./protection";

const running: TResyncShape = {
  state: "running",
  total: 1000,
  inSync: 400,
  rate: 50,
  etaSeconds: 12,
  throttle: null,
};

describe("resync state and ETA", () => {
  it("a throttled resync reads throttled with its rate, never paused", () => {
    const p = { ...running, state: "paused" as const, throttle: 3, rate: 3.4 };
    expect(resyncStateLabel(p)).toBe("throttled, 3 regions/s");
    // 600 regions left at the limit (the measured 3.4/s overshoots it): 200 s.
    expect(resyncEtaSeconds(p)).toBe(200);
    expect(resyncStateLabel({ ...p, throttle: 1 })).toBe("throttled, 1 region/s");
  });
  it("before a rate is measured, the throttle is the estimate; a slower rate wins", () => {
    expect(resyncEtaSeconds({ ...running, rate: null, throttle: 100 })).toBe(6);
    expect(resyncEtaSeconds({ ...running, rate: 20, throttle: 100 })).toBe(30);
  });
  it("unthrottled: the agent's ETA; paused without a throttle: none", () => {
    expect(resyncStateLabel(running)).toBe("running");
    expect(resyncEtaSeconds(running)).toBe(12);
    expect(resyncStateLabel({ ...running, state: "paused" })).toBe("paused");
    expect(resyncEtaSeconds({ ...running, state: "paused" })).toBeNull();
    expect(resyncEtaSeconds({ ...running, state: "cancelled" })).toBeNull();
  });
});

describe("what a cancel leaves without redundancy", () => {
  it("names regions, bytes and the time it would have taken", () => {
    const c = describeCancel({
      regionCount: 2048,
      inSync: 794,
      regionBytes: 4096,
      progress: running,
    });
    expect(c.stays).toEqual({ regions: 1254, bytes: 1254 * 4096 });
    expect(c.sentence).toBe(
      "Cancelling leaves 1,254 regions (4.9 MiB) without redundancy: nothing recovers them until you start another resync. Left running, this resync would finish in about 12 s.",
    );
  });
  it("says when nothing is lost", () => {
    expect(
      describeCancel({ regionCount: 8, inSync: 8, regionBytes: null, progress: running }).sentence,
    ).toMatch(/loses no redundancy/);
  });
});

describe("out-of-sync span of a region map", () => {
  it("exact at one region per bucket", () => {
    const s = Uint8Array.from([0, 0, 1, 0, 3, 1, 0, 0]);
    expect(outOfSyncSpan(s, 1, 8)).toEqual({ first: 2, last: 5, regions: 3, exact: true });
    expect(outOfSyncOutside(s, 1, 8, 3, 4)).toBe(2);
    expect(outOfSyncOutside(s, 1, 8, 0, 7)).toBe(0);
  });
  it("a superset when a bucket holds several regions; the last bucket may be short", () => {
    const s = Uint8Array.from([0, 1, 0, 1]);
    expect(outOfSyncSpan(s, 4, 14)).toEqual({ first: 4, last: 13, regions: 6, exact: false });
  });
  it("null when all is in sync", () => {
    expect(outOfSyncSpan(new Uint8Array(4), 1, 4)).toBeNull();
  });
});
