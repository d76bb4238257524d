import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  mergeLayouts,
  parseHex,
  pmemLayoutSignature,
  readPartitions,
  readPmemLayout,
} from "./pmem-layout.ts";
import { hostPageSize } from "./tunables.ts";

const fixtures = join(import.meta.dirname, "../../test/fixtures");
const root = join(fixtures, "pmem-namespaces");

describe("pmem layout from sysfs", () => {
  it("reads each namespace's place, personality, data start and device (seeds skipped)", async () => {
    const layout = await readPmemLayout(root);
    expect(
      layout.namespaces.map((n) => [
        n.name,
        n.region,
        n.mode,
        n.kernelMode,
        n.holder,
        n.start === null ? null : `0x${n.start.toString(16)}`,
        n.dataStart === null ? null : `0x${n.dataStart.toString(16)}`,
        n.dataSize,
        n.positional,
        n.blockDevice ?? n.daxDevice,
        n.blockSectors,
      ]),
    ).toEqual([
      // fsdax: the pfn device's resource is past the info block and the 256 MiB memmap.
      [
        "namespace0.0",
        "region0",
        "fsdax",
        "memory",
        "pfn0.1",
        "0x1080000000",
        "0x1090200000",
        16909336576n,
        true,
        "pmem0",
        33026048,
      ],
      // raw: no info block, sector 0 is the namespace's first byte.
      [
        "namespace1.0",
        "region1",
        "raw",
        "raw",
        null,
        "0x1480000000",
        "0x1480000000",
        8589934592n,
        true,
        "pmem1",
        16777216,
      ],
      // devdax: the device-DAX instance under the nd dax holder.
      [
        "namespace2.0",
        "region2",
        "devdax",
        "dax",
        "dax2.1",
        "0x1680000000",
        "0x1684200000",
        4225761280n,
        true,
        "dax2.0",
        null,
      ],
      // BTT: not positional.
      [
        "namespace3.0",
        "region3",
        "sector",
        "safe",
        "btt3.0",
        "0x1780000000",
        null,
        null,
        false,
        "pmem3s",
        4186112,
      ],
      // fsdax whose pfn resource is unreadable: data size known, data start not.
      [
        "namespace4.0",
        "region4",
        "fsdax",
        "memory",
        "pfn4.1",
        "0x1800000000",
        null,
        4225761280n,
        true,
        "pmem4",
        8253440,
      ],
      // Not even the namespace's own address is readable.
      [
        "namespace5.0",
        "region5",
        "fsdax",
        "memory",
        "pfn5.1",
        null,
        null,
        4225761280n,
        true,
        "pmem5",
        8253440,
      ],
    ]);
    expect(layout.namespaces[0]?.partitions).toEqual([
      { name: "pmem0p1", startSector: 2048, sectors: 16510976 },
      { name: "pmem0p2", startSector: 16513024, sectors: 16510976 },
    ]);
    expect(await readPartitions(root, "pmem1")).toEqual([]);
    expect(await hostPageSize(root)).toBe(4096);
  });

  it("parses the kernel's number formats strictly", () => {
    expect(parseHex("0x1090200000")).toBe(0x1090200000n);
    expect(parseHex("0")).toBe(0n);
    for (const bad of ["1090200000", "0x", "0xg", null, `0x${"f".repeat(17)}`])
      expect(parseHex(bad)).toBeNull();
  });

  it("accepts ndctl's mode names and has nothing to say without an nd bus", async () => {
    // The older pmem-dax fixture writes ndctl's words into `mode`, with no resource files.
    const old = await readPmemLayout(join(fixtures, "pmem-dax"));
    expect(old.namespaces.map((n) => [n.name, n.mode, n.start])).toEqual([
      ["namespace0.0", "fsdax", null],
      ["namespace1.0", "devdax", null],
    ]);
    expect(await readPmemLayout(join(fixtures, "no-thp"))).toEqual({ namespaces: [] });
    expect(Array.isArray((await readPmemLayout("/")).namespaces)).toBe(true);
  });

  it("keeps a namespace that vanished as last known, until another takes its place", async () => {
    const fresh = await readPmemLayout(root);
    const without = { namespaces: fresh.namespaces.filter((n) => n.name !== "namespace1.0") };
    const merged = mergeLayouts(without, fresh);
    expect(merged.namespaces.find((n) => n.name === "namespace1.0")?.gone).toBe(true);
    expect(merged.namespaces.filter((n) => n.gone).map((n) => n.name)).toEqual(["namespace1.0"]);
    // Re-created under another name over the same range: the old one is dropped.
    const recreated = {
      namespaces: [
        ...without.namespaces,
        { ...fresh.namespaces[1]!, name: "namespace1.2", blockDevice: "pmem1.2" },
      ],
    };
    expect(mergeLayouts(recreated, merged).namespaces.some((n) => n.gone)).toBe(false);
    expect(mergeLayouts(fresh, null)).toBe(fresh);
  });

  it("changes its signature when a namespace or disk goes away", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mirrorplane-pmem-"));
    try {
      await cp(root, dir, { recursive: true });
      const before = await pmemLayoutSignature(dir);
      expect(await pmemLayoutSignature(dir)).toBe(before);
      await rm(join(dir, "sys/block/pmem1"), { recursive: true });
      await rm(join(dir, "sys/bus/nd/devices/namespace1.0"), { recursive: true });
      expect(await pmemLayoutSignature(dir)).not.toBe(before);
      expect((await readPmemLayout(dir)).namespaces.map((n) => n.name)).not.toContain(
        "namespace1.0",
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
