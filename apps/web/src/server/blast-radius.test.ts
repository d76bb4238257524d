import { describe, expect, it } from "vitest";
import {
  deviceBlastRadius,
  legDevices,
  nodeBlastRadius,
  type TLegHealth,
  type TLegView,
  type TMirrorView,
} from "./blast-radius";

const leg = (device: string, health: TLegHealth, over: Partial<TLegView> = {}): TLegView => ({
  device,
  label: null,
  majorMinor: null,
  health,
  primary: false,
  source: false,
  underlying: [],
  ...over,
});

/** Legs as dm-raid1 reports them: the first is the primary, the first `A` the source. */
const legs = (...list: TLegView[]): TLegView[] => {
  const source = list.findIndex((l) => l.health === "A");
  return list.map((l, i) => ({ ...l, primary: i === 0, source: i === source }));
};

const mirror = (
  uuid: string,
  views: TMirrorView["views"],
  over: Partial<TMirrorView> = {},
): TMirrorView => ({
  uuid,
  name: uuid,
  regionCount: 1000,
  inSync: 1000,
  regionBytes: 512 * 1024,
  views,
  ...over,
});

describe("blast radius of a device", () => {
  const mirrors = [
    // Two healthy legs on different disks: losing one disk loses nothing.
    mirror("safe", [
      {
        nodeId: "n1",
        reason: null,
        legs: legs(
          leg("dm-3", "A", { underlying: ["sdb"] }),
          leg("dm-4", "A", { underlying: ["sdc"] }),
        ),
      },
    ]),
    // Leg 1 is dead: dm-3 (on sdb) holds the only good copy.
    mirror("degraded", [
      {
        nodeId: "n1",
        reason: null,
        legs: legs(
          leg("dm-6", "A", { underlying: ["sdb"] }),
          leg("dm-7", "D", { underlying: ["sdd"] }),
        ),
      },
    ]),
    // Both healthy legs are built on the same NVMe namespace.
    mirror("same-disk", [
      {
        nodeId: "n1",
        reason: null,
        legs: legs(
          leg("dm-8", "A", { underlying: ["dm-9", "nvme0n1"] }),
          leg("dm-10", "A", { underlying: ["dm-9", "nvme0n1"] }),
        ),
      },
    ]),
    // Out of sync: the source leg holds the only good copy of 250 regions.
    mirror(
      "syncing",
      [
        {
          nodeId: "n1",
          reason: null,
          legs: legs(
            leg("dm-11", "A", { underlying: ["sde"] }),
            leg("dm-12", "A", { underlying: ["sdc"] }),
          ),
        },
      ],
      { inSync: 750 },
    ),
    // An older agent: not known, never "safe".
    mirror("legacy", [{ nodeId: "n1", reason: "this agent does not report legs", legs: null }]),
  ];

  it("a mirror whose only healthy leg is on the device loses everything", () => {
    const { atRisk } = deviceBlastRadius(mirrors, "n1", "sdb");
    expect(atRisk).toEqual([
      {
        uuid: "degraded",
        name: "degraded",
        reason: "last-healthy-leg",
        regionsAtRisk: 1000,
        bytesAtRisk: 1000 * 512 * 1024,
        legs: [0],
        detail: "leg 0 is its only leg without errors",
      },
    ]);
    // The dead leg's disk takes nothing that is not already gone.
    expect(deviceBlastRadius(mirrors, "n1", "sdd").atRisk).toEqual([]);
  });

  it("all healthy legs on one device (directly or through a stack) count as one copy", () => {
    for (const device of ["nvme0n1", "dm-9"]) {
      const { atRisk } = deviceBlastRadius(mirrors, "n1", device);
      expect(atRisk.map((e) => [e.uuid, e.reason, e.legs])).toEqual([
        ["same-disk", "last-healthy-leg", [0, 1]],
      ]);
    }
    expect(deviceBlastRadius(mirrors, "n1", "dm-8").atRisk).toEqual([]);
  });

  it("an out-of-sync mirror loses its out-of-sync regions with its source leg only", () => {
    const source = deviceBlastRadius(mirrors, "n1", "sde").atRisk;
    expect(source).toMatchObject([
      {
        uuid: "syncing",
        reason: "only-copy-of-out-of-sync-regions",
        regionsAtRisk: 250,
        bytesAtRisk: 250 * 512 * 1024,
        legs: [0],
      },
    ]);
    // sdc carries a target leg of "syncing" and a healthy leg of "safe": nothing is lost.
    expect(deviceBlastRadius(mirrors, "n1", "sdc").atRisk).toEqual([]);
  });

  it("names mirrors whose legs the node did not report as unknown, and sees only that node", () => {
    expect(deviceBlastRadius(mirrors, "n1", "sdb").unknown).toEqual([
      { uuid: "legacy", nodeId: "n1", reason: "this agent does not report legs" },
    ]);
    expect(deviceBlastRadius(mirrors, "n2", "sdb")).toEqual({ atRisk: [], unknown: [] });
  });

  it("lists every device a leg is on or built on, per node", () => {
    const devices = legDevices(mirrors);
    expect(devices.find((d) => d.device === "sdb")?.legs.map((l) => [l.uuid, l.leg])).toEqual([
      ["safe", 0],
      ["degraded", 0],
    ]);
    expect(devices.find((d) => d.device === "nvme0n1")?.legs).toHaveLength(2);
    expect(devices.every((d) => d.nodeId === "n1")).toBe(true);
  });
});

describe("blast radius of a node", () => {
  it("a mirror only this node holds is at risk; shared ones are not", () => {
    const both = [
      { nodeId: "n1", reason: null, legs: legs(leg("sdb", "A"), leg("sdc", "A")) },
      { nodeId: "n2", reason: null, legs: legs(leg("sdb", "A"), leg("sdc", "A")) },
    ];
    const mirrors = [mirror("shared", both), mirror("alone", [both[0]!], { inSync: 900 })];
    expect(nodeBlastRadius(mirrors, "n1").atRisk).toMatchObject([
      { uuid: "alone", reason: "only-holder", regionsAtRisk: 100 },
    ]);
    expect(nodeBlastRadius(mirrors, "n2").atRisk).toEqual([]);
  });

  it("a node that alone still sees a healthy leg is at risk", () => {
    const mirrors = [
      mirror("split", [
        { nodeId: "n1", reason: null, legs: legs(leg("sdb", "A"), leg("sdc", "D")) },
        { nodeId: "n2", reason: null, legs: legs(leg("sdb", "D"), leg("sdc", "D")) },
        { nodeId: "n3", reason: "this agent does not report legs", legs: null },
      ]),
    ];
    expect(nodeBlastRadius(mirrors, "n1").atRisk).toMatchObject([
      { uuid: "split", reason: "only-node-seeing-a-healthy-leg", legs: [0] },
    ]);
    expect(nodeBlastRadius(mirrors, "n2").atRisk).toEqual([]);
  });
});
