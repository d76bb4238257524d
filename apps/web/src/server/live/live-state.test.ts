import { describe, expect, it } from "vitest";
import {
  applyChanges,
  diffSnapshots,
  emptySnapshot,
  LiveLog,
  type LiveSnapshot,
} from "./live-state";
import { liveMirror as mirror, liveRun as run } from "./live-test-fixtures";

const node = (freshness: "fresh" | "late" | "unknown", lastSeenAt = 1) => ({
  hostname: "h",
  freshness,
  lastSeenAt,
});

const snapshot = (s: Partial<LiveSnapshot>): LiveSnapshot => ({ ...emptySnapshot, ...s });

describe("live stream model", () => {
  it("reports changes, not snapshots: a heartbeat is a report, not a node change", () => {
    const a = snapshot({ nodes: { n1: node("fresh", 1) }, latestEventId: "5" });
    expect(diffSnapshots(a, a)).toEqual([]);
    const b = snapshot({ nodes: { n1: node("fresh", 2) }, latestEventId: "5" });
    expect(diffSnapshots(a, b)).toEqual([{ type: "report", id: "n1", lastSeenAt: 2 }]);
    const c = snapshot({
      nodes: { n1: node("unknown", 2), n2: node("fresh") },
      latestEventId: "7",
      latestAuditId: "1",
    });
    expect(diffSnapshots(b, c)).toEqual([
      { type: "node", id: "n1", value: node("unknown", 2) },
      { type: "node", id: "n2", value: node("fresh") },
      { type: "events", latestEventId: "7" },
      { type: "audit", latestAuditId: "1" },
    ]);
    expect(diffSnapshots(c, b)).toContainEqual({ type: "node", id: "n2", value: null });
  });

  it("names what changed about a mirror: its sync numbers, its run, or its facts", () => {
    const a = snapshot({ mirrors: { m1: mirror(40, run()), m2: mirror(100, null) } });
    expect(diffSnapshots(a, a)).toEqual([]);
    // The sweep moved on: the numbers and the run, with their values; the facts did not.
    const b = snapshot({
      mirrors: { m1: mirror(50, run({ inSync: 50, percent: 50 })), m2: mirror(100, null) },
    });
    expect(diffSnapshots(a, b)).toEqual([
      { type: "mirror-sync", uuid: "m1", value: b.mirrors.m1!.sync },
      { type: "mirror-resync", uuid: "m1", value: b.mirrors.m1!.resync },
    ]);
    // A throttle set on the run alone is a change of the run only.
    const c = snapshot({
      mirrors: {
        m1: mirror(50, run({ inSync: 50, percent: 50, throttle: 5 })),
        m2: mirror(100, null),
      },
    });
    expect(diffSnapshots(b, c)).toEqual([
      { type: "mirror-resync", uuid: "m1", value: expect.objectContaining({ throttle: 5 }) },
    ]);
    // A leg failed on m2 (not carried: its digest), m1 is no longer held, m3 appeared, and
    // a node could not be asked.
    const d = snapshot({
      mirrors: { m2: mirror(100, null, "f2"), m3: mirror(0, null) },
      unreachable: ["n2"],
    });
    expect(diffSnapshots(c, d)).toEqual([
      { type: "mirror-facts", uuid: "m2", facts: "f2" },
      { type: "mirror-sync", uuid: "m3", value: d.mirrors.m3!.sync },
      { type: "mirror-resync", uuid: "m3", value: null },
      { type: "mirror-facts", uuid: "m3", facts: "f1" },
      { type: "mirror-gone", uuid: "m1" },
      { type: "unreachable", nodeIds: ["n2"] },
    ]);
    // The run ended: state, end time and the mirror's running resync id change.
    const e = snapshot({
      mirrors: { m1: mirror(100, run({ state: "done", inSync: 100, percent: 100, endedAt: 9 })) },
    });
    expect(diffSnapshots(b, e).map((x) => x.type)).toEqual([
      "mirror-sync",
      "mirror-resync",
      "mirror-gone",
    ]);
    expect(diffSnapshots(b, e)[0]).toMatchObject({ value: { resyncId: null, inSync: 100 } });
  });

  it("applying the changes to the old snapshot gives the new one", () => {
    const a = snapshot({
      nodes: { n1: node("fresh"), n3: node("late") },
      mirrors: { m1: mirror(40, run()), m2: mirror(100, null) },
    });
    const b = snapshot({
      nodes: { n1: node("unknown"), n2: node("fresh") },
      mirrors: {
        m1: mirror(60, run({ inSync: 60, throttle: 3 }), "f9"),
        m3: mirror(10, null),
      },
      unreachable: ["n3"],
      latestEventId: "9",
      latestAuditId: "2",
    });
    expect(applyChanges(a, diffSnapshots(a, b))).toEqual(b);
    expect(applyChanges(b, diffSnapshots(b, a))).toEqual(a);
    const c = { ...b, nodes: { ...b.nodes, n2: node("fresh", 7) } };
    expect(applyChanges(b, diffSnapshots(b, c))).toEqual(c);
  });

  it("versions grow by one per change set; reconnecting clients catch up or get a snapshot after a gap", () => {
    const log = new LiveLog(2);
    expect(log.update(emptySnapshot)).toBeNull();
    expect(log.version).toBe(0);
    const m1 = log.update(snapshot({ nodes: { n1: node("fresh") } }));
    const m2 = log.update(snapshot({ nodes: { n1: node("late") } }));
    const m3 = log.update(snapshot({ nodes: { n1: node("unknown") } }));
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
