import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DB_UUID,
  STATUS_OUTPUT,
  TABLE_OUTPUT,
  WEB_UUID,
  writeSysfsFixture,
} from "../../testing/mirror-fixtures.ts";
import { resolveBlockDevice } from "./block-devices.ts";
import { DmsetupMirrorInventory, mirrorInventory } from "./dmsetup-inventory.ts";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "mp-dm-inventory-"));
  await writeSysfsFixture(root);
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("block devices by M:m under the agent's root", () => {
  it("names a dm device, its dm name, and every device beneath it", async () => {
    expect(await resolveBlockDevice(root, "253:6")).toEqual({
      majorMinor: "253:6",
      name: "dm-6",
      dmName: "vg_shared-lv_web_mimage_0",
      underlying: ["dm-9", "nvme0n1"],
    });
    // On a partition: the partition and its disk.
    expect((await resolveBlockDevice(root, "253:3")).underlying).toEqual(["sdb", "sdb1"]);
  });

  it("a partition leg fails with its disk; an unknown number stays a number", async () => {
    expect(await resolveBlockDevice(root, "8:33")).toEqual({
      majorMinor: "8:33",
      name: "sdc1",
      dmName: null,
      underlying: ["sdc"],
    });
    expect(await resolveBlockDevice(root, "7:99")).toEqual({
      majorMinor: "7:99",
      name: null,
      dmName: null,
      underlying: [],
    });
  });
});

describe("the kernel's mirrors from dmsetup table + status", () => {
  it("joins legs to their health and marks the primary and the source leg", async () => {
    const mirrors = await mirrorInventory(TABLE_OUTPUT, STATUS_OUTPUT, root);
    expect(mirrors.every((m) => m.healthKnown)).toBe(true);
    expect(mirrors.map((m) => [m.name, m.logUuid, m.logType])).toEqual([
      ["vg_shared-lv_db", DB_UUID, "clustered-disk"],
      ["vg_shared-lv_web", WEB_UUID, "clustered-core"],
      ["vg_local-lv_scratch", null, "core"],
    ]);
    const [db, web] = mirrors;
    expect(db).toMatchObject({
      regionSectors: 1024,
      sizeSectors: 4194304,
      logDevice: { device: "dm-2", majorMinor: "253:2", health: "A" },
    });
    expect(db!.legs).toEqual([
      {
        device: "dm-3",
        label: "vg_shared-lv_db_mimage_0",
        majorMinor: "253:3",
        health: "A",
        primary: true,
        source: true,
        underlying: ["sdb", "sdb1"],
      },
      {
        device: "dm-4",
        label: "vg_shared-lv_db_mimage_1",
        majorMinor: "253:4",
        health: "A",
        primary: false,
        source: false,
        underlying: ["sdc"],
      },
    ]);
    expect(web!.logDevice).toBeNull();
    expect(web!.legs.map((l) => [l.device, l.health, l.primary, l.source])).toEqual([
      ["dm-6", "A", true, true],
      ["dm-7", "D", false, false],
      ["dm-8", "A", false, false],
    ]);
  });

  it("when the primary failed, recovery copies from the first leg without errors", async () => {
    const status = STATUS_OUTPUT.replace("1 ADA 1 clustered-core", "1 DDA 1 clustered-core");
    const web = (await mirrorInventory(TABLE_OUTPUT, status, root))[1]!;
    expect(web.legs.map((l) => [l.health, l.primary, l.source])).toEqual([
      ["D", true, false],
      ["D", false, false],
      ["A", false, true],
    ]);
    const none = STATUS_OUTPUT.replace("1 ADA 1 clustered-core", "1 DDD 1 clustered-core");
    const dead = (await mirrorInventory(TABLE_OUTPUT, none, root))[1]!;
    expect(dead.legs.some((l) => l.source)).toBe(false);
  });

  it("without a status line (a reload between the calls) every leg is unclassified", async () => {
    const mirrors = await mirrorInventory(TABLE_OUTPUT, "", root);
    expect(mirrors[0]!.healthKnown).toBe(false);
    expect(mirrors[0]!.legs.map((l) => l.health)).toEqual(["U", "U"]);
    expect(mirrors[0]!.logDevice!.health).toBeNull();
  });
});

describe("the live dmsetup call fails soft", () => {
  it("no dmsetup binary: no mirrors, and the reason", async () => {
    const inventory = new DmsetupMirrorInventory({ root, binary: join(root, "no-such-dmsetup") });
    const result = await inventory.list();
    expect(result.mirrors).toEqual([]);
    expect(result.reason).toMatch(/no-such-dmsetup table --target mirror: not installed/);
  });

  it("a dmsetup that exits non-zero (no device-mapper in the kernel): no mirrors, its message", async () => {
    // `false` stands for dmsetup's own exit status 1; the real one on a host without
    // device-mapper is tried below.
    const result = await new DmsetupMirrorInventory({ root, binary: "false" }).list();
    expect(result.mirrors).toEqual([]);
    expect(result.reason).toMatch(/^false table --target mirror: /);
  });

  it("a reload between `table` and `status` is read again, not reported as unclassified legs", async () => {
    // A dmsetup whose first `status` comes from the next table load (no mirror line).
    const dir = await mkdtemp(join(tmpdir(), "mp-dmsetup-"));
    try {
      await writeFile(join(dir, "table"), TABLE_OUTPUT);
      await writeFile(join(dir, "status"), STATUS_OUTPUT);
      const binary = join(dir, "dmsetup");
      await writeFile(
        binary,
        [
          "#!/bin/sh",
          `cd ${dir}`,
          'if [ "$1" = table ]; then cat table; exit 0; fi',
          "if [ ! -e raced ]; then : > raced; exit 0; fi",
          "cat status",
        ].join("\n"),
        { mode: 0o755 },
      );
      const result = await new DmsetupMirrorInventory({ root, binary, cacheMs: 0 }).list();
      expect(result.reason).toBeNull();
      expect(result.mirrors.every((m) => m.healthKnown)).toBe(true);
      expect(result.mirrors[1]!.legs.map((l) => l.health)).toEqual(["A", "D", "A"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("the real dmsetup on this machine answers or says why, and never throws", async () => {
    const result = await new DmsetupMirrorInventory({ root: "/" }).list();
    if (result.reason !== null) expect(result.mirrors).toEqual([]);
    else expect(Array.isArray(result.mirrors)).toBe(true);
  });

  it("answers are reused for cacheMs, then read again", async () => {
    let now = 0;
    const inventory = new DmsetupMirrorInventory({
      root,
      binary: "false",
      cacheMs: 1000,
      now: () => now,
    });
    const first = inventory.list();
    now = 999;
    expect(inventory.list()).toBe(first);
    now = 1000;
    expect(inventory.list()).not.toBe(first);
  });
});
