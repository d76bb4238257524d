import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MirrorMap, ZMirrorConfig } from "../events/mirror-map.ts";
import { readDeviceStates } from "./devices.ts";
import { deviceLossEvent, hostEvents } from "./host-events.ts";
import { memorySeries, parseBadblocks, parseHardwareCorrupted, readMemory } from "./memory.ts";

const fixtures = join(import.meta.dirname, "../../test/fixtures");
const ctx = { nodeId: "n1", bootId: "b1", now: Date.UTC(2026, 0, 1) };

describe("memory sources on fixture trees", () => {
  it("reads legacy csrow EDAC, per-node memory_failure and HardwareCorrupted", async () => {
    const m = await readMemory(join(fixtures, "edac-csrow-numa"));
    expect(m.present).toMatchObject({ memoryFailure: true, edac: true, meminfo: true, dax: false });
    expect(m.nodes).toEqual([
      { node: "node0", total: 6, ignored: 0, failed: 1, delayed: 2, recovered: 3 },
      { node: "node1", total: 0, ignored: 0, failed: 0, delayed: 0, recovered: 0 },
    ]);
    expect(m.hardwareCorruptedBytes).toBe(28 * 1024);
    const mc0 = m.edac?.[0];
    expect(mc0).toMatchObject({ mc: "mc0", name: "F17h", ceCount: 17, ueCount: 1, sizeMb: 65536 });
    expect(mc0?.locations.map((l) => [l.id, l.layout, l.label, l.ceCount, l.ueCount])).toEqual([
      ["noinfo", "noinfo", null, 2, 0],
      ["csrow0", "csrow", null, 15, 1],
      ["csrow0/ch0", "channel", "CPU0_DIMM_A1", 12, null],
      ["csrow0/ch1", "channel", "CPU0_DIMM_B1", 3, null],
      ["csrow1", "csrow", null, 0, 0],
      ["csrow1/ch0", "channel", "CPU0_DIMM_A2", 0, null],
      ["csrow1/ch1", "channel", "CPU0_DIMM_B2", 0, null],
    ]);
    expect(memorySeries(m)).toContainEqual(["edac.mc0.csrow0.ch0.ce_count", 12]);
  });

  it("reads the DIMM and rank EDAC layouts (skx/i10nm/sb_edac)", async () => {
    const m = await readMemory(join(fixtures, "edac-dimm-nvme"));
    expect(
      m.edac?.map((mc) =>
        mc.locations
          .filter((l) => l.layout !== "noinfo")
          .map((l) => [l.id, l.layout, l.label, l.location, l.ceCount, l.ueCount]),
      ),
    ).toEqual([
      [
        ["dimm0", "dimm", "CPU_SrcID#0_MC#0_Chan#0_DIMM#0", "channel 0 slot 0", 1021, 0],
        ["dimm1", "dimm", "CPU_SrcID#0_MC#0_Chan#1_DIMM#0", "channel 1 slot 0", 0, 0],
      ],
      [["rank0", "rank", "CPU_SrcID#0_Ha#1_Chan#0_DIMM#0", "channel 0 slot 0 rank 0", 0, 2]],
    ]);
  });

  it("reads pmem bad blocks in 512-byte sectors, tells 'none known' from 'clean', and finds DAX", async () => {
    const m = await readMemory(join(fixtures, "pmem-dax"));
    expect(
      m.pmem.map((p) => [p.device, p.type, p.sizeBytes, p.badblocksState, p.badblocks]),
    ).toEqual([
      [
        "pmem0",
        "pmem",
        6 * 2 ** 40,
        "known",
        [
          { startSector: 2048, sectors: 8 },
          { startSector: 1048576, sectors: 1 },
        ],
      ],
      ["pmem1", "pmem", 33554432 * 512, "none-known", []],
      [
        "region0",
        "region",
        3298534883328,
        "known",
        [
          { startSector: 4096, sectors: 8 },
          { startSector: 1050624, sectors: 1 },
        ],
      ],
      ["region1", "region", 17179869184, "none-known", []],
    ]);
    expect(m.dax).toEqual([
      { device: "dax1.0", sizeBytes: 16909336576, resource: "0x2060200000", numaNode: 1 },
    ]);
    expect(m.hardwareCorruptedBytes).toBe(0);
  });

  it("parses badblocks and meminfo text strictly", () => {
    expect(parseBadblocks("")).toEqual({ ranges: [], truncated: false });
    expect(parseBadblocks("8 1\ngarbage\n16 0\n\u0000\n").ranges).toEqual([
      { startSector: 8, sectors: 1 },
    ]);
    expect(parseBadblocks("1 1\n".repeat(1100)).truncated).toBe(true);
    expect(parseHardwareCorrupted("MemTotal: 1 kB\n")).toBeNull();
  });

  it("tolerates the absences of this machine's real root (KERNEL-SOURCES §0)", async () => {
    const m = await readMemory("/");
    // Whatever this kernel has, reading never throws and absent sources are empty.
    expect(Array.isArray(m.nodes)).toBe(true);
    expect(Array.isArray(m.pmem)).toBe(true);
    if (!m.present.edac) expect(m.edac).toBeNull();
    if (!m.present.meminfo) expect(m.hardwareCorruptedBytes).toBeNull();
    expect(Array.isArray(await readDeviceStates("/"))).toBe(true);
    expect(await readMemory(join(fixtures, "no-thp"))).toMatchObject({
      nodes: [],
      edac: null,
      pmem: [],
      dax: [],
    });
  });
});

describe("host events from successive polls", () => {
  it("reports counters and bad ranges on the first poll with keys a restart re-derives", async () => {
    const memory = await readMemory(join(fixtures, "edac-csrow-numa"));
    const first = hostEvents(null, { memory, devices: [] }, ctx);
    expect(first.map((e) => [e.kind, e.severity, e.device, e.count])).toEqual([
      ["hwpoison_counter", "error", "node0", 6],
      ["hwpoison_counter", "warning", null, 1],
      ["edac_error", "warning", "mc0/noinfo", 2],
      ["edac_error", "critical", "mc0/csrow0", 1],
      ["edac_error", "warning", "mc0/csrow0", 15],
      ["edac_error", "warning", "CPU0_DIMM_A1", 12],
      ["edac_error", "warning", "CPU0_DIMM_B1", 3],
    ]);
    const again = hostEvents(null, { memory, devices: [] }, { ...ctx, now: ctx.now + 60_000 });
    expect(again.map((e) => e.key)).toEqual(first.map((e) => e.key));
    expect(hostEvents({ memory, devices: [] }, { memory, devices: [] }, ctx)).toEqual([]);
  });

  it("reports only what grew", async () => {
    const memory = await readMemory(join(fixtures, "edac-dimm-nvme"));
    const grown = structuredClone(memory);
    grown.edac![0]!.locations.find((l) => l.id === "dimm1")!.ceCount = 5;
    const events = hostEvents({ memory, devices: [] }, { memory: grown, devices: [] }, ctx);
    expect(events.map((e) => [e.kind, e.device, e.count, e.message])).toEqual([
      [
        "edac_error",
        "CPU_SrcID#0_MC#0_Chan#1_DIMM#0",
        5,
        expect.stringContaining(
          "5 corrected memory error(s) on CPU_SrcID#0_MC#0_Chan#1_DIMM#0 (channel 1 slot 0)",
        ),
      ],
    ]);
  });

  it("maps pmem bad ranges to mirror regions", async () => {
    const memory = await readMemory(join(fixtures, "pmem-dax"));
    const mirrors = new MirrorMap([
      ZMirrorConfig.parse({ name: "pm", regionSectors: 1024, legs: [{ device: "pmem0" }] }),
    ]);
    const events = hostEvents(null, { memory, devices: [] }, { ...ctx, mirrors });
    const pmem0 = events.filter((e) => e.device === "pmem0");
    expect(pmem0.map((e) => [e.range, e.mirror, e.regions])).toEqual([
      [{ start: "2048", end: "2055", unit: "sector" }, "pm", { start: 2, end: 2 }],
      [{ start: "1048576", end: "1048576", unit: "sector" }, "pm", { start: 1024, end: 1024 }],
    ]);
    expect(events.every((e) => e.key.startsWith("n1:pmem:"))).toBe(true);
  });

  it("reports a vanished 6 TiB pmem device and a DAX device as one range event each", async () => {
    const memory = await readMemory(join(fixtures, "pmem-dax"));
    const after = { ...memory, pmem: memory.pmem.filter((p) => p.device !== "pmem0"), dax: [] };
    const events = hostEvents({ memory, devices: [] }, { memory: after, devices: [] }, ctx);
    expect(events.map((e) => [e.kind, e.device, e.range, e.count])).toEqual([
      [
        "memory_device_loss",
        "pmem0",
        { start: "0", end: String(6 * 2 ** 40 - 1), unit: "byte" },
        1610612736,
      ],
      [
        "memory_device_loss",
        "dax1.0",
        { start: "0", end: String(16909336576 - 1), unit: "byte" },
        4128256,
      ],
    ]);
    expect(deviceLossEvent(ctx, { device: "x", sizeBytes: null, type: "pmem" }).range?.end).toBe(
      "18446744073709551615",
    );
  });

  it("reports device state failures, transitions and removals", async () => {
    const devices = await readDeviceStates(join(fixtures, "edac-dimm-nvme"));
    expect(devices).toEqual([
      { device: "nvme0", type: "nvme", state: "live" },
      { device: "nvme1", type: "nvme", state: "resetting" },
      { device: "sda", type: "scsi", state: "running" },
      { device: "sdb", type: "scsi", state: "offline" },
    ]);
    const memory = await readMemory(join(fixtures, "no-thp"));
    const first = hostEvents(null, { memory, devices }, ctx);
    expect(first.map((e) => [e.kind, e.severity, e.device])).toEqual([
      ["device_failure", "warning", "nvme1"],
      ["device_failure", "critical", "sdb"],
    ]);
    const later = [
      { device: "nvme1", type: "nvme" as const, state: "live" },
      { device: "sda", type: "scsi" as const, state: "running" },
      { device: "sdb", type: "scsi" as const, state: "offline" },
    ];
    const next = hostEvents({ memory, devices }, { memory, devices: later }, ctx);
    expect(next.map((e) => [e.kind, e.device, e.data.what])).toEqual([
      ["device_recovered", "nvme1", "device_state"],
      ["device_failure", "nvme0", "device_removed"],
    ]);
  });
});
