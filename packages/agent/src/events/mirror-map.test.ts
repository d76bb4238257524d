import { describe, expect, it } from "vitest";
import type { THostEvent } from "./event.ts";
import { MirrorMap, placeEvent, ZMirrorConfig } from "./mirror-map.ts";

const mirrors = new MirrorMap(
  [
    // Two mirrors with legs on the same pmem disk, at different start sectors (two LVs of
    // one PV, configured by their offset on the disk).
    {
      name: "a",
      regionSectors: 1024,
      sizeSectors: 1024 * 100,
      legs: [{ device: "pmem0", aliases: ["259:0"] }, { device: "sdb" }],
    },
    {
      name: "b",
      regionSectors: 1024,
      sizeSectors: 1024 * 100,
      legs: [{ device: "pmem0", startSector: 1024 * 100 }, { device: "sdc" }],
      logDevice: "pmem9",
    },
    { name: "c", regionSectors: 2048, legs: [{ device: "pmem1p2" }, { device: "sdd" }] },
  ].map((m) => ZMirrorConfig.parse(m)),
);

const sectors = (start: number, end: number) => ({
  start: BigInt(start),
  end: BigInt(end),
  unit: "sector" as const,
});

describe("mirror map", () => {
  it("finds every leg a range touches when a device carries several", () => {
    expect(mirrors.locateAll("pmem0", sectors(0, 1023))).toEqual([
      { mirror: "a", leg: "pmem0", regions: { start: 0, end: 0 } },
    ]);
    expect(mirrors.locateAll("pmem0", sectors(1024 * 99, 1024 * 101 - 1))).toEqual([
      { mirror: "a", leg: "pmem0", regions: { start: 99, end: 99 } },
      { mirror: "b", leg: "pmem0", regions: { start: 0, end: 0 } },
    ]);
    // Aliases reach the same legs; no range: every leg on it, all regions.
    expect(mirrors.locateAll("259:0")).toEqual([
      { mirror: "a", leg: "pmem0", regions: { start: 0, end: 99 } },
    ]);
    expect(mirrors.locateAll("pmem9")).toEqual([{ mirror: "b", leg: "log" }]);
    expect(mirrors.locateAll("sdz")).toEqual([]);
  });

  it("keeps locate's answer: the first leg hit, else the leg the device carries", () => {
    expect(mirrors.locate("pmem0", sectors(1024 * 150, 1024 * 150))).toEqual({
      mirror: "b",
      leg: "pmem0",
      regions: { start: 50, end: 50 },
    });
    // Beyond both mirrors' data: the device still names its (first) leg, without regions.
    expect(mirrors.locate("pmem0", sectors(1024 * 300, 1024 * 300))).toEqual({
      mirror: "a",
      leg: "pmem0",
    });
    expect(mirrors.locate("pmem9")).toEqual({ mirror: "b", leg: "log" });
    expect(mirrors.locate(null)).toBeNull();
  });

  it("maps a disk range onto its partitions, partition-relative", () => {
    const partitions = [
      { name: "pmem1p1", startSector: 2048, sectors: 4096 },
      { name: "pmem1p2", startSector: 6144, sectors: 8192 },
    ];
    expect(mirrors.locateOnDisk("pmem1", { start: 6000n, end: 8192n }, { partitions })).toEqual([
      { device: "pmem1p2", mirror: "c", leg: "pmem1p2", regions: { start: 0, end: 1 } },
    ]);
    expect(mirrors.locateOnDisk("pmem1", { start: 0n, end: 6143n }, { partitions })).toEqual([]);
    // The whole disk: each leg on a partition from its first to its last sector.
    expect(mirrors.locateOnDisk("pmem1", null, { diskSectors: 16384, partitions })).toEqual([
      { device: "pmem1p2", mirror: "c", leg: "pmem1p2", regions: { start: 0, end: 3 } },
    ]);
  });

  it("gives a report that touches two legs two events, with stable keys", () => {
    const event: THostEvent = {
      key: "n1:b:kmsg:7",
      kind: "memory_failure",
      severity: "warning",
      source: "kmsg",
      occurredAt: 0,
      device: null,
      message: "m",
      count: 2,
      simulated: false,
      data: { what: "action_result" },
    };
    expect(placeEvent(event, [])).toEqual([event]);
    const one = placeEvent(event, [
      { device: "pmem0", location: { mirror: "a", leg: "pmem0", regions: { start: 1, end: 2 } } },
    ]);
    expect(one.map((e) => [e.key, e.device, e.mirror, e.leg, e.regions])).toEqual([
      ["n1:b:kmsg:7", "pmem0", "a", "pmem0", { start: 1, end: 2 }],
    ]);
    const two = placeEvent(event, [
      { device: "pmem0", location: { mirror: "a", leg: "pmem0", regions: { start: 99, end: 99 } } },
      { device: "pmem0", location: { mirror: "b", leg: "pmem0", regions: { start: 0, end: 0 } } },
      { device: "pmem0", location: { mirror: "b", leg: "pmem0", regions: { start: 0, end: 0 } } },
    ]);
    expect(two.map((e) => [e.key, e.mirror, e.regions, e.data.placement])).toEqual([
      ["n1:b:kmsg:7@pmem0/a/pmem0", "a", { start: 99, end: 99 }, "1 of 2"],
      ["n1:b:kmsg:7@pmem0/b/pmem0", "b", { start: 0, end: 0 }, "2 of 2"],
    ]);
  });
});
