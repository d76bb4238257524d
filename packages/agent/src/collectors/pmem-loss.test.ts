import { describe, expect, it } from "vitest";
import { fixtureMirrors, pmemFixtureRoot } from "../../testing/pmem-fixtures.ts";
import type { THostEvent } from "../events/event.ts";
import { type HostState, hostEvents } from "./host-events.ts";
import { readMemory } from "./memory.ts";

const ctx = { nodeId: "n1", bootId: "b1", now: Date.UTC(2026, 0, 2), mirrors: fixtureMirrors };

async function vanish(...devices: string[]) {
  const memory = await readMemory(pmemFixtureRoot);
  const before: HostState = { memory, devices: [] };
  const after: HostState = {
    memory: {
      ...memory,
      pmem: memory.pmem.filter((p) => !devices.includes(p.device)),
      dax: memory.dax.filter((d) => !devices.includes(d.device)),
    },
    devices: [],
  };
  return hostEvents(before, after, ctx);
}

const row = (e: THostEvent) => [
  e.key.slice(`n1:b1:loss:`.length),
  e.kind,
  e.device,
  e.mirror ?? null,
  e.leg ?? null,
  e.regions ?? null,
];

describe("a pmem/DAX device that disappears names the mirror legs on it", () => {
  it("reads the partitions of pmem disks", async () => {
    const memory = await readMemory(pmemFixtureRoot);
    expect(memory.pmem.filter((p) => p.partitions.length > 0).map((p) => p.device)).toEqual([
      "pmem0",
    ]);
    expect(memory.pmem.map((p) => p.device)).toEqual([
      "pmem0",
      "pmem1",
      "pmem3s",
      "pmem4",
      "pmem5",
      "region0",
      "region1",
      "region2",
      "region3",
      "region4",
      "region5",
    ]);
  });

  it("one event per leg, each leg whole, for legs on the disk's partitions", async () => {
    const now = ctx.now;
    expect((await vanish("pmem0")).map(row)).toEqual([
      [
        `pmem0:${now}@pmem0/m-p1/pmem0p1`,
        "memory_device_loss",
        "pmem0",
        "m-p1",
        "pmem0p1",
        { start: 0, end: 16123 },
      ],
      [
        `pmem0:${now}@pmem0/m-p2/pmem0p2`,
        "memory_device_loss",
        "pmem0",
        "m-p2",
        "pmem0p2",
        { start: 0, end: 16123 },
      ],
    ]);
    // A leg on the disk itself, past its start sector, mirror size unknown: up to the disk's end.
    expect((await vanish("pmem1")).map(row)).toEqual([
      [`pmem1:${now}`, "memory_device_loss", "pmem1", "m-raw", "pmem1", { start: 0, end: 16381 }],
    ]);
  });

  it("a region and its disk gone together: the disk's event names the leg, once", async () => {
    const events = await vanish("region3", "pmem3s");
    expect(events.map(row)).toEqual([
      [
        `pmem3s:${ctx.now}`,
        "memory_device_loss",
        "pmem3s",
        "m-btt",
        "pmem3s",
        { start: 0, end: 2043 },
      ],
      [`region3:${ctx.now}`, "memory_device_loss", "region3", null, null, null],
    ]);
    expect(events[1]!.data.blockDevices).toEqual(["pmem3s"]);
    // Only the region listed as gone (its disk not yet): the region names the disk's leg.
    expect((await vanish("region4")).map(row)).toEqual([
      [
        `region4:${ctx.now}`,
        "memory_device_loss",
        "region4",
        "m-p4",
        "pmem4",
        { start: 0, end: 8059 },
      ],
    ]);
  });

  it("a device-DAX instance carries no block device, so no leg", async () => {
    expect((await vanish("dax2.0")).map(row)).toEqual([
      [`dax2.0:${ctx.now}`, "memory_device_loss", "dax2.0", null, null, null],
    ]);
  });

  it("bad blocks of a pmem disk name the leg on the partition they are in", async () => {
    const memory = await readMemory(pmemFixtureRoot);
    const withBad = {
      ...memory,
      pmem: memory.pmem.map((p) =>
        p.device === "pmem0"
          ? {
              ...p,
              badblocksState: "known" as const,
              badblocks: [{ startSector: 12288, sectors: 8 }],
            }
          : p,
      ),
    };
    const events = hostEvents(null, { memory: withBad, devices: [] }, ctx);
    expect(events.map((e) => [e.kind, e.device, e.range, e.mirror, e.leg, e.regions])).toEqual([
      [
        "pmem_badblocks",
        "pmem0",
        { start: "12288", end: "12295", unit: "sector" },
        "m-p1",
        "pmem0p1",
        { start: 10, end: 10 },
      ],
    ]);
  });
});
