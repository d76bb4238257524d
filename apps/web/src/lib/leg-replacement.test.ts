import { describe, expect, it } from "vitest";
import {
  dmsetupCommands,
  isLvmMirror,
  lvmCommands,
  lvmNames,
  parseMirrorTarget,
  physicalVolumes,
  replaceLegInTable,
  replacementCandidates,
  replacementState,
  shellQuote,
  type TCandidateDisk,
} from "./leg-replacement";

const UUID = "LVM-p1x8Yk3v0Wm4aQd9sT7uHn2cLr6fBe5oZg1jKi0Xy3wVq8Ns4Dt7Mh2Ra9Pb6Cu";
const DB = `0 1953519616 mirror userspace 4 ${UUID} clustered-core 1024 nosync 2 253:1 0 253:2 0 1 handle_errors`;
const THREE = `0 1048576 mirror userspace 5 ${UUID} integrated_flush clustered-disk 253:2 1024 3 253:6 0 253:7 0 253:8 0`;

describe("a mirror table with one leg replaced", () => {
  it("puts the new device, at offset 0, where the failed leg was", () => {
    expect(replaceLegInTable(DB, 1, "8:16", 0)).toEqual({
      table: `0 1953519616 mirror userspace 4 ${UUID} clustered-core 1024 nosync 2 253:1 0 8:16 0 1 handle_errors`,
      newIndex: 1,
      moved: [],
    });
    // No features, three legs, a disk log: everything else exactly as it was.
    expect(replaceLegInTable(THREE, 2, "259:4", 0).table).toBe(
      `0 1048576 mirror userspace 5 ${UUID} integrated_flush clustered-disk 253:2 1024 3 253:6 0 253:7 0 259:4 0`,
    );
  });

  it("never makes the empty device the first leg (dm-raid1's default mirror)", () => {
    const r = replaceLegInTable(THREE, 0, "8:16", 2);
    expect(r.table).toBe(
      `0 1048576 mirror userspace 5 ${UUID} integrated_flush clustered-disk 253:2 1024 3 253:8 0 253:7 0 8:16 0`,
    );
    expect(r).toMatchObject({ newIndex: 2, moved: [{ from: 2, to: 0 }] });
    expect(() => replaceLegInTable(THREE, 0, "8:16", null)).toThrow(
      /no other leg is without errors/,
    );
  });

  it("refuses what is not a mirror line, a leg it does not have, or a device already in it", () => {
    expect(() => replaceLegInTable("0 100 linear 8:16 0", 0, "8:32", 1)).toThrow(/not a dm-raid1/);
    expect(() => replaceLegInTable(`0 100 mirror core 2 1024`, 0, "8:32", 1)).toThrow(/truncated/);
    expect(() => replaceLegInTable(DB, 2, "8:32", 0)).toThrow("the table has no leg 2");
    expect(() => replaceLegInTable(DB, 1, "253:1", 0)).toThrow(/already a leg/);
    expect(parseMirrorTarget(DB).features).toEqual(["1", "handle_errors"]);
  });

  it("dmsetup commands: reload into the inactive slot, then suspend (noflush: held writes are requeued, not failed) and resume, quoted", () => {
    expect(dmsetupCommands("mp_scratch", "0 8 mirror core 1 1024 2 7:0 0 8:16 0")).toEqual([
      "dmsetup reload mp_scratch --table '0 8 mirror core 1 1024 2 7:0 0 8:16 0'",
      "dmsetup suspend --noflush mp_scratch",
      "dmsetup resume mp_scratch",
    ]);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});

describe("LVM", () => {
  it("reads vg and lv from the dm name, '-' inside a name being doubled", () => {
    expect(lvmNames("vg_data-lv_db")).toEqual({ vg: "vg_data", lv: "lv_db" });
    expect(lvmNames("my--vg-my--lv")).toEqual({ vg: "my-vg", lv: "my-lv" });
    expect(lvmNames("mp_scratch")).toBeNull();
  });

  it("knows an LVM mirror by its dm uuid, or its legs' mimage names", () => {
    expect(isLvmMirror(UUID, [])).toBe(true);
    expect(isLvmMirror("", ["vg-lv_mimage_0"])).toBe(true);
    expect(isLvmMirror(null, ["vg-lv_mimage_0"])).toBe(true);
    expect(isLvmMirror(null, [null, null])).toBe(false);
  });

  it("the commands: the new PV into the VG, then --repair (or --replace of the old PV)", () => {
    expect(physicalVolumes(["nvme1n1"])).toEqual(["nvme1n1"]);
    expect(physicalVolumes(["dm-9", "sdb", "sdb1"])).toEqual(["sdb1"]);
    expect(lvmCommands({ dmName: "vg_data-lv_db", newDisk: "sdb", oldPvs: ["nvme1n1"] })).toEqual({
      vg: "vg_data",
      lv: "lv_db",
      repair: [
        "pvcreate /dev/sdb",
        "vgextend vg_data /dev/sdb",
        "lvconvert --repair vg_data/lv_db /dev/sdb",
      ],
      replace: [
        "pvcreate /dev/sdb",
        "vgextend vg_data /dev/sdb",
        "lvconvert --replace /dev/nvme1n1 vg_data/lv_db /dev/sdb",
      ],
    });
    expect(lvmCommands({ dmName: "vg-lv", newDisk: "sdb", oldPvs: [] })?.replace).toBeNull();
  });
});

const disk = (over: Partial<TCandidateDisk> & { name: string }): TCandidateDisk => ({
  majorMinor: null,
  kind: "sata",
  sizeBytes: 4e12,
  model: null,
  serial: null,
  partitions: [],
  holders: [],
  legs: [],
  smart: { status: "passed", reasons: [] },
  ...over,
});

describe("which disks can take the leg", () => {
  it("only big enough, unused, non-leg disks whose SMART is not failing; each exclusion says why", () => {
    const result = replacementCandidates(
      [
        disk({ name: "dm-0", kind: "dm" }),
        disk({ name: "nvme0n1", legs: [{ mirror: "vg_data-lv_db", index: 0 }] }),
        disk({ name: "nvme1n1", smart: { status: "failing", reasons: ["12 media errors"] } }),
        disk({ name: "sdc", holders: ["dm-7"] }),
        disk({ name: "sdd", sizeBytes: 2 ** 30 }),
        disk({ name: "sdb" }),
        disk({
          name: "sde",
          partitions: ["sde1"],
          smart: { status: "warning", reasons: ["24 reallocated sectors"] },
        }),
        disk({
          name: "loop0",
          kind: "loop",
          smart: { status: "unavailable", reasons: ["/dev/loop0: Unable to detect device type"] },
        }),
      ],
      1e12,
    );
    expect(result.map((c) => [c.disk.name, c.excluded])).toEqual([
      ["sdb", null],
      ["sde", null],
      ["loop0", null],
      ["dm-0", "a device-mapper device: pick the disk it would be built on"],
      ["nvme0n1", "already leg 0 of vg_data-lv_db"],
      ["nvme1n1", "SMART FAILING: 12 media errors"],
      ["sdc", "in use: dm-7 built on it"],
      ["sdd", "too small: 1 GiB, the leg needs 931.3 GiB"],
    ]);
    expect(result[1]!.cautions).toEqual([
      "SMART: 24 reallocated sectors",
      "has partitions (sde1): check they hold nothing you need",
    ]);
    expect(result[2]!.cautions).toEqual([
      "SMART unavailable: /dev/loop0: Unable to detect device type",
    ]);
    // Without the leg's size nothing can be checked, so nothing is offered.
    expect(replacementCandidates([disk({ name: "sdb" })], null)[0]!.excluded).toMatch(
      /not reported/,
    );
  });
});

describe("watching for the new leg", () => {
  const newDisk = { name: "sdb", majorMinor: "8:16" };
  const leg = (
    device: string,
    health: string,
    underlying: string[] = [],
    majorMinor: string | null = null,
  ) => ({
    device,
    health,
    underlying,
    majorMinor,
  });
  it("waits until a leg is on the new disk, and is done when that leg is alive", () => {
    expect(replacementState(null, newDisk)).toBe("waiting");
    expect(
      replacementState([leg("dm-1", "A", ["nvme0n1"]), leg("dm-2", "D", ["nvme1n1"])], newDisk),
    ).toBe("waiting");
    // LVM's new image may reuse the old one's dm device name: what counts is what it is on.
    expect(
      replacementState([leg("dm-1", "A", ["nvme0n1"]), leg("dm-2", "A", ["sdb"])], newDisk),
    ).toBe("done");
    expect(replacementState([leg("7:0", "A"), leg("8:16", "D", [], "8:16")], newDisk)).toBe(
      "loaded-with-errors",
    );
    expect(replacementState([leg("sdb", "A")], newDisk)).toBe("done");
  });
});
