import { describe, expect, it } from "vitest";
import {
  addMember,
  clearRegion,
  markRegion,
  NO_REGION,
  newLogGroup,
  releaseMember,
  requestRecovery,
  serverOf,
} from "./log-state.ts";

function inSyncGroup(regions = 64) {
  const g = newLogGroup("u", regions);
  g.syncBits.fill(true);
  g.cleanBits.fill(true);
  addMember(g, 3, 1n);
  addMember(g, 1, 1n);
  addMember(g, 2, 1n);
  return g;
}

describe("per-log primitives (spec §3)", () => {
  it("the lowest node id is the server (spec §4.1)", () => {
    expect(serverOf(inSyncGroup())).toBe(1);
    expect(serverOf(newLogGroup("u", 1))).toBeNull();
  });

  it("touched is set only when a clean bit really changes (scenario 16)", () => {
    const g = inSyncGroup();
    markRegion(g, 1, 4);
    expect(g.touched).toBe(true);
    g.touched = false;
    markRegion(g, 2, 4);
    expect(g.touched).toBe(false);
    clearRegion(g, 1, 4);
    expect(g.touched).toBe(false);
    clearRegion(g, 2, 4);
    expect(g.touched).toBe(true);
    expect(g.cleanBits.test(4)).toBe(true);
  });

  it("the reverse index follows marks and clears", () => {
    const g = inSyncGroup();
    markRegion(g, 2, 9);
    markRegion(g, 1, 9);
    expect(g.markers.get(9)).toEqual([1, 2]);
    expect([...g.markedBy.get(2)!]).toEqual([9]);
    clearRegion(g, 2, 9);
    expect(g.markedBy.has(2)).toBe(false);
    clearRegion(g, 1, 9);
    expect(g.markers.size).toBe(0);
  });

  it("a failed member's marks become out of sync; the cursor moves back (§4.5 [REC])", () => {
    const g = inSyncGroup();
    g.syncSearch = 65;
    markRegion(g, 2, 40);
    markRegion(g, 2, 12);
    markRegion(g, 3, 12);
    expect(releaseMember(g, 2, false)).toEqual([12, 40]);
    expect(g.syncBits.count).toBe(62);
    expect(g.markers.get(12)).toEqual([3]);
    expect(g.syncSearch).toBe(12);
    expect(g.members.map((m) => m.node)).toEqual([1, 3]);
  });

  it("a failed recoverer frees the slot and its region goes first", () => {
    const g = inSyncGroup();
    g.syncBits.clear(50);
    g.recoveringRegion = 50;
    g.recoverer = 3;
    g.syncSearch = 51;
    requestRecovery(g, 7);
    releaseMember(g, 3, false);
    expect(g.recoveringRegion).toBe(NO_REGION);
    expect(g.recoveryRequests).toEqual([7, 50]);
    expect(g.syncSearch).toBe(50);
  });

  it("a clean leave releases marks as clears: in-sync regions become clean", () => {
    const g = inSyncGroup();
    markRegion(g, 2, 5);
    g.syncBits.clear(6);
    markRegion(g, 2, 6);
    expect(releaseMember(g, 2, true)).toEqual([]);
    expect(g.cleanBits.test(5)).toBe(true);
    expect(g.cleanBits.test(6)).toBe(false);
    expect(g.markedBy.has(2)).toBe(false);
  });

  it("a departing member that had the recovering region marked invalidates the recovery", () => {
    for (const clean of [false, true]) {
      const g = inSyncGroup();
      g.syncBits.clear(50);
      markRegion(g, 2, 50); // e.g. state adopted from a snapshot that predates the flag
      g.recoveringRegion = 50;
      g.recoverer = 3;
      expect(g.recoveryInvalidated).toBe(false);
      releaseMember(g, 2, clean);
      expect(g.recoveryInvalidated).toBe(true);
      expect(g.syncBits.test(50)).toBe(false);
      expect([g.recoveringRegion, g.recoverer]).toEqual([50, 3]); // the slot stays B's
    }
  });

  it("a new mark of the recovering region invalidates the recovery; a repeated one does not", () => {
    const g = inSyncGroup();
    g.syncBits.clear(50);
    markRegion(g, 3, 50);
    g.recoveringRegion = 50;
    g.recoverer = 3;
    markRegion(g, 3, 50);
    markRegion(g, 1, 49);
    expect(g.recoveryInvalidated).toBe(false);
    markRegion(g, 1, 50);
    expect(g.recoveryInvalidated).toBe(true);
  });
});
