import { describe, expect, it } from "vitest";
import {
  applyChanges,
  diffSnapshots,
  emptySnapshot,
  LiveLog,
  type LiveSnapshot,
} from "./live-state";

const node = (freshness: "fresh" | "late" | "unknown", lastSeenAt = 1) => ({
  hostname: "h",
  freshness,
  lastSeenAt,
});

describe("live stream model", () => {
  it("reports changes, not snapshots: a heartbeat alone is not news", () => {
    const a: LiveSnapshot = {
      nodes: { n1: node("fresh", 1) },
      latestEventId: "5",
      latestAuditId: null,
    };
    const b: LiveSnapshot = {
      nodes: { n1: node("fresh", 2) },
      latestEventId: "5",
      latestAuditId: null,
    };
    expect(diffSnapshots(a, b)).toEqual([]);
    const c: LiveSnapshot = {
      nodes: { n1: node("unknown", 2), n2: node("fresh") },
      latestEventId: "7",
      latestAuditId: "1",
    };
    expect(diffSnapshots(b, c)).toEqual([
      { type: "node", id: "n1", value: node("unknown", 2) },
      { type: "node", id: "n2", value: node("fresh") },
      { type: "events", latestEventId: "7" },
      { type: "audit", latestAuditId: "1" },
    ]);
    expect(diffSnapshots(c, b)).toContainEqual({ type: "node", id: "n2", value: null });
  });

  it("applying the changes to the old snapshot gives the new one", () => {
    const a: LiveSnapshot = {
      nodes: { n1: node("fresh"), n3: node("late") },
      latestEventId: null,
      latestAuditId: null,
    };
    const b: LiveSnapshot = {
      nodes: { n1: node("unknown"), n2: node("fresh") },
      latestEventId: "9",
      latestAuditId: "2",
    };
    expect(applyChanges(a, diffSnapshots(a, b))).toEqual(b);
  });

  it("versions grow by one per change set; reconnecting clients catch up or get a snapshot after a gap", () => {
    const log = new LiveLog(2);
    expect(log.update(emptySnapshot)).toBeNull();
    expect(log.version).toBe(0);
    const m1 = log.update({
      nodes: { n1: node("fresh") },
      latestEventId: null,
      latestAuditId: null,
    });
    const m2 = log.update({
      nodes: { n1: node("late") },
      latestEventId: null,
      latestAuditId: null,
    });
    const m3 = log.update({
      nodes: { n1: node("unknown") },
      latestEventId: null,
      latestAuditId: null,
    });
    expect([m1?.version, m2?.version, m3?.version]).toEqual([1, 2, 3]);
    expect(log.catchUp(3)).toEqual([]);
    expect(log.catchUp(2).map((m) => [m.version, m.kind])).toEqual([[3, "changes"]]);
    // History keeps 2 change sets (versions 2 and 3): version 1 can still catch up...
    expect(log.catchUp(1).map((m) => m.version)).toEqual([2, 3]);
    // ...version 0 cannot: it gets a snapshot at the current version.
    expect(log.catchUp(0)).toEqual([{ version: 3, kind: "snapshot", snapshot: log.snapshot }]);
    expect(log.catchUp(null)[0]!.kind).toBe("snapshot");
    // A client from the future (server restarted) also gets a snapshot.
    expect(log.catchUp(99)[0]!.kind).toBe("snapshot");
  });
});
