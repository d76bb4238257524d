import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TDisk, TSmart } from "@mirrorplane/contracts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DISK_HOST_STATUS,
  DISK_HOST_TABLE,
  FAKE_SMARTCTL,
  writeDiskHostFixture,
} from "../../testing/disk-fixtures.ts";
import { createAgentMetrics } from "../metrics.ts";
import { mirrorInventory } from "../mirrors/dmsetup-inventory.ts";
import { readBlockDisks } from "./block-disks.ts";
import { DiskInventory } from "./disk-inventory.ts";
import { diskIdentity, smartEvents } from "./smart-events.ts";
import { parseSmartctl, readSmart } from "./smartctl.ts";

const SMARTCTL_FIXTURES = join(FAKE_SMARTCTL, "../fixtures/smartctl");
const REAL_SMARTCTL = "/usr/sbin/smartctl";
const at = new Date("2026-01-02T03:04:05Z");

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "mp-disks-"));
  await writeDiskHostFixture(root);
});
afterAll(() => rm(root, { recursive: true, force: true }));

function inventory(overrides: { smartctl?: string; timeoutMs?: number } = {}) {
  return new DiskInventory({
    root,
    smartctl: overrides.smartctl ?? FAKE_SMARTCTL,
    intervalMs: null,
    ...(overrides.timeoutMs ? { timeoutMs: overrides.timeoutMs } : {}),
    mirrors: async () => ({
      mirrors: await mirrorInventory(DISK_HOST_TABLE, DISK_HOST_STATUS, root),
      reason: null,
    }),
    now: () => at,
  });
}

const byName = (disks: readonly TDisk[]) => new Map(disks.map((d) => [d.name, d]));

describe("whole block devices from sysfs under the agent's root", () => {
  it("lists each disk with what sysfs says, leaving out unbound loops and zram", async () => {
    const disks = await readBlockDisks(root);
    expect(disks.map((d) => [d.name, d.kind])).toEqual([
      ["dm-0", "dm"],
      ["dm-1", "dm"],
      ["dm-2", "dm"],
      ["dm-3", "dm"],
      ["loop0", "loop"],
      ["nvme0n1", "nvme"],
      ["nvme1n1", "nvme"],
      ["sda", "sata"],
      ["sdb", "sata"],
    ]);
    const d = new Map(disks.map((x) => [x.name, x]));
    expect(d.get("nvme1n1")).toMatchObject({
      majorMinor: "259:2",
      sizeBytes: 1953525168 * 512,
      model: "Samsung SSD 980 PRO 1TB",
      serial: "S5GXNX0T598765B",
      firmware: "5B2QGXA7",
      wwid: "eui.002538b511b0f3e4",
      rotational: false,
      state: "live",
      nvme: { controller: "nvme1", transport: "pcie", cntlid: "6", nsid: "1" },
      holders: ["dm-2"],
    });
    expect(d.get("sda")).toMatchObject({
      vendor: "ATA",
      model: "WDC WD40EFRX-68N",
      rotational: true,
      state: "running",
      partitions: ["sda1"],
      // sda1 holds the scratch mirror's leg directly.
      holders: ["dm-3"],
    });
    expect(d.get("loop0")?.backingFile).toBe("/var/lib/mirrorplane/scratch-leg0.img");
    expect(d.get("dm-0")?.dm).toEqual({
      name: "vg_data-lv_db",
      uuid: expect.stringMatching(/^LVM-/),
      slaves: ["dm-1", "dm-2"],
    });
  });

  it("places each mirror leg on the disk it is, or is built on", async () => {
    const disks = byName((await inventory().list()).disks);
    expect(disks.get("nvme1n1")?.legs).toEqual([
      {
        mirror: "vg_data-lv_db",
        logUuid: expect.any(String),
        index: 1,
        device: "dm-2",
        health: "D",
      },
    ]);
    expect(disks.get("sda")?.legs).toEqual([
      {
        mirror: "mp_scratch",
        logUuid: "mirrorplane-scratch-0001",
        index: 1,
        device: "sda1",
        health: "A",
      },
    ]);
    expect(disks.get("loop0")?.legs.map((l) => [l.mirror, l.index])).toEqual([["mp_scratch", 0]]);
    expect(disks.get("sdb")?.legs).toEqual([]);
    // The leg's own dm device carries it too.
    expect(disks.get("dm-2")?.legs.map((l) => l.index)).toEqual([1]);
  });
});

describe("SMART through smartctl's JSON", () => {
  it("reads every drive with the fake smartctl and says what each one's health is", async () => {
    const inv = inventory();
    const before = byName((await inv.list()).disks);
    expect(before.get("nvme0n1")?.smart.status).toBe("pending");
    const disks = byName((await inv.refresh()).disks);

    const healthy = disks.get("nvme0n1")!.smart;
    expect(healthy).toMatchObject({
      status: "passed",
      reasons: [],
      readAt: at,
      exitStatus: 0,
      protocol: "NVMe",
      serial: "S5GXNX0T512345A",
      temperatureC: 38,
      powerOnHours: 8712,
      percentageUsed: 3,
      criticalWarning: 0,
      mediaErrors: 0,
      availableSparePercent: 100,
      availableSpareThresholdPercent: 10,
    });

    const failing = disks.get("nvme1n1")!.smart;
    expect(failing.status).toBe("failing");
    expect(failing.exitStatus).toBe(72);
    expect(failing.exitBits).toEqual([
      "SMART status check returned DISK FAILING",
      "the device error log contains records of errors",
    ]);
    expect(failing.reasons).toEqual([
      "the drive's SMART overall-health self-assessment is FAILED",
      "NVMe critical warning 0x04: reliability is degraded by media or internal errors",
      "12 media errors (unrecovered data integrity errors)",
    ]);

    const worn = disks.get("sda")!.smart;
    expect(worn).toMatchObject({
      status: "warning",
      protocol: "ATA",
      reallocatedSectors: 24,
      pendingSectors: 2,
      uncorrectableSectors: 0,
      temperatureC: 34,
      powerOnHours: 33120,
      reasons: ["24 reallocated sectors", "2 sectors pending reallocation"],
    });
    expect(disks.get("sdb")!.smart.status).toBe("passed");

    // smartctl cannot read a loop device: unavailable, in smartctl's words, not an error.
    expect(disks.get("loop0")!.smart).toMatchObject({
      status: "unavailable",
      reasons: ["/dev/loop0: Unable to detect device type"],
      exitStatus: 1,
    });
    // dm devices are not asked: their disks are.
    expect(disks.get("dm-2")!.smart).toMatchObject({
      status: "unavailable",
      reasons: ["a device-mapper device: SMART is read from the devices beneath it (nvme1n1)"],
    });
  });

  it("one device on demand leaves the others' readings alone", async () => {
    const inv = inventory();
    const disks = byName((await inv.refresh("sdb")).disks);
    expect(disks.get("sdb")!.smart.status).toBe("passed");
    expect(disks.get("sda")!.smart.status).toBe("pending");
  });

  it("a missing smartctl or one that does not answer is 'unavailable' with the reason", async () => {
    const missing = await readSmart(join(root, "no-such-smartctl"), "sda", 5000);
    expect(missing.status).toBe("unavailable");
    expect(missing.reasons).toEqual([`${join(root, "no-such-smartctl")}: not installed`]);
    // fixtures/smartctl/hung.sleep: the fake waits 30 s; the agent gives it 300 ms.
    const hung = await readSmart(FAKE_SMARTCTL, "hung", 300);
    expect(hung.status).toBe("unavailable");
    expect(hung.reasons).toEqual([`${FAKE_SMARTCTL} did not answer within 300 ms`]);
  });

  it("a prefail attribute at its threshold now is failing, even when the verdict passed", async () => {
    const json = JSON.parse(await readFile(join(SMARTCTL_FIXTURES, "sda.json"), "utf8"));
    const reallocated = json.ata_smart_attributes.table.find((a: { id: number }) => a.id === 5);
    reallocated.when_failed = "now";
    json.smartctl.exit_status = 16;
    const smart = parseSmartctl(JSON.stringify(json), 16, at);
    expect(smart.status).toBe("failing");
    expect(smart.reasons[0]).toBe("attribute 5 Reallocated_Sector_Ct is at or below its threshold");
  });

  it.skipIf(!existsSync(REAL_SMARTCTL))(
    "the real smartctl on a device it cannot read: SMART unavailable with smartctl's reason",
    async () => {
      // A loop device where the host has one, else /dev/null: neither has SMART.
      const target = existsSync("/dev/loop0") ? "loop0" : "null";
      const smart = await readSmart(REAL_SMARTCTL, target, 20_000);
      expect(smart.status).toBe("unavailable");
      expect(smart.exitStatus).not.toBe(0);
      expect(smart.exitStatus! & 0b11).not.toBe(0);
      expect(smart.reasons).toEqual([`/dev/${target}: Unable to detect device type`]);
    },
  );
});

describe("SMART transitions as events", () => {
  const ctx = { nodeId: "node-a", now: 1_000 };
  const read = async () => (await inventory().refresh()).disks;

  it("first sight: a failing drive and non-zero counters are reported once; a loop device is not", async () => {
    const events = smartEvents(new Map(), await read(), ctx);
    expect(events.map((e) => [e.kind, e.severity, e.device, e.data.what])).toEqual([
      ["device_failure", "critical", "nvme1n1", "smart_failing"],
      ["device_failure", "error", "nvme1n1", "smart_mediaErrors"],
      ["device_failure", "warning", "sda", "smart_reallocatedSectors"],
      ["device_failure", "warning", "sda", "smart_pendingSectors"],
    ]);
    const failing = events[0]!;
    expect(failing.message).toBe(
      "SMART: nvme1n1 (Samsung SSD 980 PRO 1TB, serial S5GXNX0T598765B) is FAILING: the drive's SMART overall-health self-assessment is FAILED; NVMe critical warning 0x04: reliability is degraded by media or internal errors; 12 media errors (unrecovered data integrity errors); mirror legs on it: vg_data-lv_db leg 1",
    );
    expect(failing).toMatchObject({ mirror: "vg_data-lv_db", leg: "dm-2", source: "agent" });
    // The same readings again (the next round, or after a restart): the same keys.
    const again = smartEvents(new Map(), await read(), { ...ctx, now: 2_000 });
    expect(again.map((e) => e.key)).toEqual(events.map((e) => e.key));
  });

  it("passed → failing, counters rising, and failing → passing", async () => {
    const disks = await read();
    const seen = new Map<string, TSmart>(disks.map((d) => [diskIdentity(d), d.smart]));
    expect(smartEvents(seen, disks, ctx)).toEqual([]);

    const healthy = disks.find((d) => d.name === "nvme0n1")!;
    const worse: TDisk = {
      ...healthy,
      smart: {
        ...healthy.smart,
        status: "failing",
        criticalWarning: 1,
        mediaErrors: 3,
        reasons: ["NVMe critical warning 0x01: available spare is below its threshold"],
      },
    };
    const events = smartEvents(seen, [worse], ctx);
    expect(events.map((e) => [e.kind, e.data.what, e.data.previous])).toEqual([
      ["device_failure", "smart_failing", "passed"],
      ["device_failure", "smart_mediaErrors", 0],
    ]);
    seen.set(diskIdentity(worse), worse.smart);
    const back = smartEvents(seen, [healthy], { ...ctx, now: 3_000 });
    expect(back.map((e) => [e.kind, e.severity, e.data.what])).toEqual([
      ["device_recovered", "notice", "smart_passes"],
    ]);
    // A counter that did not rise says nothing.
    const sda = disks.find((d) => d.name === "sda")!;
    expect(smartEvents(seen, [sda], ctx)).toEqual([]);
  });
});

describe("SMART as Prometheus gauges", () => {
  it("health, temperature, wear and media errors per disk; a loop device only as unavailable", async () => {
    const metrics = createAgentMetrics({ node: "node-a" });
    metrics.setDisks(await inventory().refresh());
    const text = await metrics.registry.metrics();
    const line = (name: string, device: string) =>
      text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(`device="${device}"`));
    expect(line("mirrorplane_disk_smart_healthy", "nvme1n1")).toMatch(/ 0$/);
    expect(line("mirrorplane_disk_smart_healthy", "nvme0n1")).toMatch(/ 1$/);
    expect(line("mirrorplane_disk_smart_healthy", "sda")).toMatch(/ 1$/);
    expect(line("mirrorplane_disk_media_errors", "nvme1n1")).toMatch(/ 12$/);
    expect(line("mirrorplane_disk_temperature_celsius", "nvme1n1")).toMatch(/ 51$/);
    expect(line("mirrorplane_disk_percentage_used", "nvme1n1")).toMatch(/ 41$/);
    expect(line("mirrorplane_disk_reallocated_sectors", "sda")).toMatch(/ 24$/);
    expect(line("mirrorplane_disk_smart_available", "loop0")).toMatch(/ 0$/);
    expect(line("mirrorplane_disk_smart_healthy", "loop0")).toBeUndefined();
    expect(line("mirrorplane_disk_smart_healthy", "nvme1n1")).toContain('serial="S5GXNX0T598765B"');
  });
});
