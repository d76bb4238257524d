import { mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

// A storage host's disks as sysfs lays them out (KERNEL-SOURCES.md §3.2), for the disk
// inventory tests, with `dmsetup table`/`status` output of its two mirrors. Its drives'
// smartctl outputs are `test/fixtures/smartctl/<name>.json` (smartctl 7.3's JSON), printed
// by `test/fake-smartctl` (FAKE_SMARTCTL):
//   nvme0n1  Samsung 980 PRO 1 TB, healthy                → lv_db leg 0 (dm-1)
//   nvme1n1  the same model, critical_warning 0x04, 12 media errors, SMART FAILED
//                                                         → lv_db leg 1 (dm-2), health D
//   sda      WD Red 4 TB (SATA), 24 reallocated and 2 pending sectors; sda1 → scratch leg 1
//   sdb      WD Red 4 TB (SATA), healthy, no leg (a replacement)
//   loop0    a 1 GiB loop device (smartctl: "Unable to detect device type") → scratch leg 0
//   loop1    unbound (size 0): not listed; zram0: memory, not listed
//   dm-0     vg_data-lv_db (LVM, uuid LVM-…), a mirror on dm-1 and dm-2
//   dm-3     mp_scratch, a raw dm mirror on loop0 and sda1

export const FAKE_SMARTCTL = fileURLToPath(new URL("../test/fake-smartctl", import.meta.url));

export const DB_LOG_UUID = "LVM-p1x8Yk3v0Wm4aQd9sT7uHn2cLr6fBe5oZg1jKi0Xy3wVq8Ns4Dt7Mh2Ra9Pb6Cu";
export const SCRATCH_LOG_UUID = "mirrorplane-scratch-0001";

export const DISK_HOST_TABLE = [
  `vg_data-lv_db: 0 1953519616 mirror userspace 4 ${DB_LOG_UUID} clustered-core 1024 nosync 2 253:1 0 253:2 0 1 handle_errors`,
  `mp_scratch: 0 2097152 mirror userspace 3 ${SCRATCH_LOG_UUID} clustered-core 1024 2 7:0 0 8:1 2048 1 handle_errors`,
  "",
].join("\n");

export const DISK_HOST_STATUS = [
  "vg_data-lv_db: 0 1953519616 mirror 2 253:1 253:2 1907734/1907734 1 AD 1 clustered-core",
  "mp_scratch: 0 2097152 mirror 2 7:0 8:1 2048/2048 1 AA 1 clustered-core",
  "",
].join("\n");

interface Device {
  readonly name: string;
  readonly majorMinor: string;
  /** Under `sys/devices/`. */
  readonly path: string;
  readonly sizeSectors: number;
  readonly rotational?: number;
  readonly removable?: number;
  /** Files in the device's own directory. */
  readonly files?: Record<string, string>;
  /** `device` → this directory (under `sys/devices/`), with these files. */
  readonly device?: { readonly path: string; readonly files: Record<string, string> };
  readonly partitionOf?: string;
  readonly slaves?: readonly string[];
}

const ATA1 = "pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0";
const ATA2 = "pci0000:00/0000:00:17.0/ata2/host1/target1:0:0/1:0:0:0";
const NVME0 = "pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0";
const NVME1 = "pci0000:00/0000:00:1d.4/0000:3e:00.0/nvme/nvme1";

const nvmeController = (serial: string, cntlid: string) => ({
  model: "Samsung SSD 980 PRO 1TB                 \n",
  serial: `${serial}     \n`,
  firmware_rev: "5B2QGXA7\n",
  state: "live\n",
  transport: "pcie\n",
  cntlid: `${cntlid}\n`,
});
const sata = (model: string, serial: string) => ({
  vendor: "ATA     \n",
  model: `${model}\n`,
  rev: "0A82\n",
  state: "running\n",
  wwid: `t10.ATA     ${model}                        ${serial}\n`,
});

export const DISK_HOST_DEVICES: readonly Device[] = [
  {
    name: "nvme0n1",
    majorMinor: "259:0",
    path: `${NVME0}/nvme0n1`,
    sizeSectors: 1953525168,
    rotational: 0,
    files: { wwid: "eui.002538b511b0a1c2\n", nsid: "1\n" },
    device: { path: NVME0, files: nvmeController("S5GXNX0T512345A", "6") },
  },
  {
    name: "nvme1n1",
    majorMinor: "259:2",
    path: `${NVME1}/nvme1n1`,
    sizeSectors: 1953525168,
    rotational: 0,
    files: { wwid: "eui.002538b511b0f3e4\n", nsid: "1\n" },
    device: { path: NVME1, files: nvmeController("S5GXNX0T598765B", "6") },
  },
  {
    name: "sda",
    majorMinor: "8:0",
    path: `${ATA1}/block/sda`,
    sizeSectors: 7814037168,
    rotational: 1,
    device: { path: ATA1, files: sata("WDC WD40EFRX-68N", "WD-WCC7K1234567") },
  },
  {
    name: "sda1",
    majorMinor: "8:1",
    path: `${ATA1}/block/sda/sda1`,
    sizeSectors: 7814035120,
    partitionOf: "sda",
  },
  {
    name: "sdb",
    majorMinor: "8:16",
    path: `${ATA2}/block/sdb`,
    sizeSectors: 7814037168,
    rotational: 1,
    device: { path: ATA2, files: sata("WDC WD40EFRX-68N", "WD-WCC7K7654321") },
  },
  {
    name: "loop0",
    majorMinor: "7:0",
    path: "virtual/block/loop0",
    sizeSectors: 2097152,
    rotational: 1,
    files: { "loop/backing_file": "/var/lib/mirrorplane/scratch-leg0.img\n" },
  },
  { name: "loop1", majorMinor: "7:1", path: "virtual/block/loop1", sizeSectors: 0 },
  { name: "zram0", majorMinor: "252:0", path: "virtual/block/zram0", sizeSectors: 8388608 },
  {
    name: "dm-0",
    majorMinor: "253:0",
    path: "virtual/block/dm-0",
    sizeSectors: 1953519616,
    rotational: 0,
    files: {
      "dm/name": "vg_data-lv_db\n",
      "dm/uuid": "LVM-p1x8Yk3v0Wm4aQd9sT7uHn2cLr6fBe5oZg1jKi0Xy3wVq8Ns4Dt7Mh2Ra9Pb6Cu\n",
    },
    slaves: ["dm-1", "dm-2"],
  },
  {
    name: "dm-1",
    majorMinor: "253:1",
    path: "virtual/block/dm-1",
    sizeSectors: 1953519616,
    rotational: 0,
    files: {
      "dm/name": "vg_data-lv_db_mimage_0\n",
      "dm/uuid": "LVM-p1x8Yk3v0Wm4aQd9sT7uHn2cLr6fBe5oVn3Lk7Qp2Xs9Fd4Tg6Wb1Ma8Hc5Jr0Ey\n",
    },
    slaves: ["nvme0n1"],
  },
  {
    name: "dm-2",
    majorMinor: "253:2",
    path: "virtual/block/dm-2",
    sizeSectors: 1953519616,
    rotational: 0,
    files: {
      "dm/name": "vg_data-lv_db_mimage_1\n",
      "dm/uuid": "LVM-p1x8Yk3v0Wm4aQd9sT7uHn2cLr6fBe5oQz5Rm1Wk8Yt3Gs6Nv0Lp4Hx7Dc2Ub9Ja\n",
    },
    slaves: ["nvme1n1"],
  },
  {
    name: "dm-3",
    majorMinor: "253:3",
    path: "virtual/block/dm-3",
    sizeSectors: 2097152,
    rotational: 1,
    files: { "dm/name": "mp_scratch\n", "dm/uuid": "\n" },
    slaves: ["loop0", "sda1"],
  },
];

/** Writes DISK_HOST_DEVICES under `root` (a temp dir) as the kernel links them. */
export async function writeDiskHostFixture(root: string): Promise<void> {
  const sys = join(root, "sys");
  const link = async (at: string, target: string) => {
    await mkdir(dirname(at), { recursive: true });
    await symlink(relative(dirname(at), target), at);
  };
  const write = async (path: string, text: string) => {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  };
  const dirOf = (d: Device) => join(sys, "devices", d.path);
  for (const d of DISK_HOST_DEVICES) {
    const dir = dirOf(d);
    await mkdir(join(dir, "holders"), { recursive: true });
    await write(join(dir, "dev"), `${d.majorMinor}\n`);
    await write(join(dir, "size"), `${d.sizeSectors}\n`);
    for (const [file, text] of Object.entries(d.files ?? {})) await write(join(dir, file), text);
    if (d.partitionOf) {
      await write(join(dir, "partition"), "1\n");
    } else {
      await write(join(dir, "removable"), `${d.removable ?? 0}\n`);
      await write(join(dir, "queue/rotational"), `${d.rotational ?? 0}\n`);
      await link(join(sys, "block", d.name), dir);
    }
    if (d.device) {
      const device = join(sys, "devices", d.device.path);
      for (const [file, text] of Object.entries(d.device.files))
        await write(join(device, file), text);
      await link(join(dir, "device"), device);
    }
    await link(join(sys, "dev/block", d.majorMinor), dir);
    await link(join(sys, "class/block", d.name), dir);
  }
  for (const d of DISK_HOST_DEVICES) {
    await mkdir(join(dirOf(d), "slaves"), { recursive: true });
    for (const slave of d.slaves ?? []) {
      const target = DISK_HOST_DEVICES.find((s) => s.name === slave)!;
      await link(join(dirOf(d), "slaves", slave), dirOf(target));
      await link(join(dirOf(target), "holders", d.name), dirOf(d));
    }
  }
}
