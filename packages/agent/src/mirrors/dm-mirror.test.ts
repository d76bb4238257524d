import { describe, expect, it } from "vitest";
import { DB_UUID, STATUS_OUTPUT, TABLE_OUTPUT, WEB_UUID } from "../../testing/mirror-fixtures.ts";
import { parseMirrorTables } from "../clusterlog/dmsetup.ts";
import { parseMirrorStatus, parseMirrorTable } from "./dm-mirror.ts";

describe("dmsetup table --target mirror", () => {
  it("reads size, log type, log uuid and device, region size, legs and features", () => {
    expect(parseMirrorTable(TABLE_OUTPUT)).toEqual([
      {
        name: "vg_shared-lv_db",
        start: 0,
        sizeSectors: 4194304,
        logType: "clustered-disk",
        logUuid: DB_UUID,
        logDevice: "253:2",
        regionSectors: 1024,
        integratedFlush: false,
        legs: [
          { device: "253:3", offset: 0 },
          { device: "253:4", offset: 0 },
        ],
        features: ["handle_errors"],
        // What `dmsetup reload --table` takes back.
        text: `0 4194304 mirror userspace 4 ${DB_UUID} clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors`,
      },
      {
        name: "vg_shared-lv_web",
        start: 0,
        sizeSectors: 1048576,
        logType: "clustered-core",
        logUuid: WEB_UUID,
        logDevice: null,
        regionSectors: 1024,
        integratedFlush: true,
        legs: [
          { device: "253:6", offset: 0 },
          { device: "253:7", offset: 0 },
          { device: "253:8", offset: 0 },
        ],
        features: ["handle_errors"],
        text: `0 1048576 mirror userspace 5 ${WEB_UUID} integrated_flush clustered-core 1024 nosync 3 253:6 0 253:7 0 253:8 0 1 handle_errors`,
      },
      {
        name: "vg_local-lv_scratch",
        start: 0,
        sizeSectors: 204800,
        logType: "core",
        logUuid: null,
        logDevice: null,
        regionSectors: 1024,
        integratedFlush: false,
        legs: [
          { device: "8:33", offset: 384 },
          { device: "8:49", offset: 384 },
        ],
        features: [],
        text: "0 204800 mirror core 2 1024 nosync 2 8:33 384 8:49 384",
      },
    ]);
  });

  it("agrees with the suspend/resume path on which log uuid a mirror has", () => {
    const ours = parseMirrorTable(TABLE_OUTPUT)
      .filter((t) => t.logUuid)
      .map((t) => ({ device: t.name, logUuid: t.logUuid }));
    expect(ours).toEqual(parseMirrorTables(TABLE_OUTPUT));
  });

  it("reads a disk log, and skips other targets, empty output and truncated lines", () => {
    const output = [
      "No devices found",
      "vg0-plain: 0 8192 linear 8:16 2048",
      "vg0-m: 0 8192 mirror disk 2 253:5 512 2 8:16 0 8:32 0",
      "vg0-short: 0 8192 mirror core 2 1024 nosync 3 8:16 0 8:32 0",
      "vg0-badlog: 0 8192 mirror userspace 3 LVM-x weird 1024 2 8:16 0 8:32 0",
    ].join("\n");
    const tables = parseMirrorTable(output);
    expect(tables.map((t) => t.name)).toEqual(["vg0-m"]);
    expect(tables[0]).toMatchObject({ logType: "disk", logDevice: "253:5", regionSectors: 512 });
    expect(parseMirrorTable("")).toEqual([]);
  });
});

describe("dmsetup status --target mirror", () => {
  it("reads legs with their health characters, sync ratio and the log's health", () => {
    expect(parseMirrorStatus(STATUS_OUTPUT)).toEqual([
      {
        name: "vg_shared-lv_db",
        start: 0,
        sizeSectors: 4194304,
        legs: [
          { device: "253:3", health: "A" },
          { device: "253:4", health: "A" },
        ],
        inSync: 4096,
        regionCount: 4096,
        logType: "clustered-disk",
        logDevice: "253:2",
        logHealth: "A",
        logUnreachable: false,
      },
      {
        name: "vg_shared-lv_web",
        start: 0,
        sizeSectors: 1048576,
        legs: [
          { device: "253:6", health: "A" },
          { device: "253:7", health: "D" },
          { device: "253:8", health: "A" },
        ],
        inSync: 256,
        regionCount: 1024,
        logType: "clustered-core",
        logDevice: null,
        logHealth: null,
        logUnreachable: false,
      },
      {
        name: "vg_local-lv_scratch",
        start: 0,
        sizeSectors: 204800,
        legs: [
          { device: "8:33", health: "A" },
          { device: "8:49", health: "A" },
        ],
        inSync: 200,
        regionCount: 200,
        logType: "core",
        logDevice: null,
        logHealth: null,
        logUnreachable: false,
      },
    ]);
  });

  it("reads every health character; one it does not know is unclassified, never alive", () => {
    const line = (chars: string) =>
      parseMirrorStatus(
        `m: 0 1024 mirror ${chars.length} ${[...chars].map((_, i) => `8:${i}`).join(" ")} 1/1 1 ${chars} 3 disk 253:2 D`,
      )[0]!;
    expect(line("AFDSRU").legs.map((l) => l.health)).toEqual(["A", "F", "D", "S", "R", "U"]);
    expect(line("AX").legs.map((l) => l.health)).toEqual(["A", "U"]);
    expect(line("AD")).toMatchObject({ logType: "disk", logDevice: "253:2", logHealth: "D" });
  });

  it("a log server that did not answer is COM_FAILURE: log health unknown", () => {
    const [s] = parseMirrorStatus(
      "vg_shared-lv_db: 0 4194304 mirror 2 253:3 253:4 0/4096 1 AA userspace 1 COM_FAILURE",
    );
    expect(s).toMatchObject({ inSync: 0, logType: "userspace", logUnreachable: true });
    expect(s!.logHealth).toBeNull();
  });

  it("health characters that do not match the leg count leave every leg unclassified", () => {
    const [s] = parseMirrorStatus("m: 0 1024 mirror 2 8:16 8:32 1/1 1 A 1 core");
    expect(s!.legs.map((l) => l.health)).toEqual(["U", "U"]);
  });
});
