import { mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";

// `dmsetup table --target mirror` / `dmsetup status --target mirror` output of one storage
// host, in the kernel's formats (dm-raid1.c mirror_status, dm-log-userspace-base.c
// userspace_status; KERNEL-SOURCES.md §3.3), for the parser and inventory tests:
//  * lv_db: a clustered-disk log, two legs in sync;
//  * lv_web: a clustered-core log with integrated_flush and nosync, three legs, the second
//    failed (D), a quarter in sync;
//  * lv_scratch: a local (non-clustered) mirror with a core log, on partitions.

export const DB_UUID = "LVM-Wk3tDcd5NYHbj2ym4N3lQk0mOvDJ1D8ZJXBy0NrJpN7l2cd9RE7DdxcFk5ql5gMb";
export const WEB_UUID = "LVM-Wk3tDcd5NYHbj2ym4N3lQk0mOvDJ1D8Zc8GxO3p2VJkq9hRfT0yUeW4sLnAa7mZi";

export const TABLE_OUTPUT = [
  `vg_shared-lv_db: 0 4194304 mirror userspace 4 ${DB_UUID} clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors`,
  `vg_shared-lv_web: 0 1048576 mirror userspace 5 ${WEB_UUID} integrated_flush clustered-core 1024 nosync 3 253:6 0 253:7 0 253:8 0 1 handle_errors`,
  "vg_local-lv_scratch: 0 204800 mirror core 2 1024 nosync 2 8:33 384 8:49 384",
  "",
].join("\n");

export const STATUS_OUTPUT = [
  "vg_shared-lv_db: 0 4194304 mirror 2 253:3 253:4 4096/4096 1 AA 3 clustered-disk 253:2 A",
  "vg_shared-lv_web: 0 1048576 mirror 3 253:6 253:7 253:8 256/1024 1 ADA 1 clustered-core",
  "vg_local-lv_scratch: 0 204800 mirror 2 8:33 8:49 200/200 1 AA 1 core",
  "",
].join("\n");

/**
 * The sysfs of that host, as relative symlinks the way the kernel lays them out: every
 * device under `sys/devices/…`, `sys/dev/block/M:m` and `sys/class/block/<name>` pointing
 * at it, `slaves/` links of dm devices, `dm/name`, a `partition` file in partitions.
 *   dm-3 (lv_db_mimage_0) on sdb1; dm-4 (lv_db_mimage_1) on sdc; dm-2 (lv_db_mlog) on sdd;
 *   dm-6, dm-8 (lv_web legs 0 and 2) on dm-9 (a linear LV) on nvme0n1; dm-7 on sdc.
 */
export interface FixtureDevice {
  readonly name: string;
  readonly majorMinor: string;
  /** Under `sys/devices/`. */
  readonly path: string;
  readonly dmName?: string;
  readonly slaves?: readonly string[];
  readonly partition?: number;
}

const PCI = "pci0000:00/0000:00:10.0/host0";
export const SYSFS_DEVICES: readonly FixtureDevice[] = [
  { name: "sdb", majorMinor: "8:16", path: `${PCI}/target0:0:1/0:0:1:0/block/sdb` },
  {
    name: "sdb1",
    majorMinor: "8:17",
    path: `${PCI}/target0:0:1/0:0:1:0/block/sdb/sdb1`,
    partition: 1,
  },
  { name: "sdc", majorMinor: "8:32", path: `${PCI}/target0:0:2/0:0:2:0/block/sdc` },
  {
    name: "sdc1",
    majorMinor: "8:33",
    path: `${PCI}/target0:0:2/0:0:2:0/block/sdc/sdc1`,
    partition: 1,
  },
  { name: "sdd", majorMinor: "8:48", path: `${PCI}/target0:0:3/0:0:3:0/block/sdd` },
  {
    name: "sdd1",
    majorMinor: "8:49",
    path: `${PCI}/target0:0:3/0:0:3:0/block/sdd/sdd1`,
    partition: 1,
  },
  { name: "nvme0n1", majorMinor: "259:0", path: "pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1" },
  {
    name: "dm-2",
    majorMinor: "253:2",
    path: "virtual/block/dm-2",
    dmName: "vg_shared-lv_db_mlog",
    slaves: ["sdd"],
  },
  {
    name: "dm-3",
    majorMinor: "253:3",
    path: "virtual/block/dm-3",
    dmName: "vg_shared-lv_db_mimage_0",
    slaves: ["sdb1"],
  },
  {
    name: "dm-4",
    majorMinor: "253:4",
    path: "virtual/block/dm-4",
    dmName: "vg_shared-lv_db_mimage_1",
    slaves: ["sdc"],
  },
  {
    name: "dm-6",
    majorMinor: "253:6",
    path: "virtual/block/dm-6",
    dmName: "vg_shared-lv_web_mimage_0",
    slaves: ["dm-9"],
  },
  {
    name: "dm-7",
    majorMinor: "253:7",
    path: "virtual/block/dm-7",
    dmName: "vg_shared-lv_web_mimage_1",
    slaves: ["sdc"],
  },
  {
    name: "dm-8",
    majorMinor: "253:8",
    path: "virtual/block/dm-8",
    dmName: "vg_shared-lv_web_mimage_2",
    slaves: ["dm-9"],
  },
  {
    name: "dm-9",
    majorMinor: "253:9",
    path: "virtual/block/dm-9",
    dmName: "vg_fast-pool",
    slaves: ["nvme0n1"],
  },
];

/** Writes SYSFS_DEVICES under `root` (a temp dir): the layout `block-devices.ts` reads. */
export async function writeSysfsFixture(root: string): Promise<void> {
  const sys = join(root, "sys");
  const link = async (at: string, target: string) => {
    await mkdir(dirname(at), { recursive: true });
    await symlink(relative(dirname(at), target), at);
  };
  for (const d of SYSFS_DEVICES) {
    const dir = join(sys, "devices", d.path);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "dev"), `${d.majorMinor}\n`);
    if (d.partition !== undefined) await writeFile(join(dir, "partition"), `${d.partition}\n`);
    if (d.dmName) {
      await mkdir(join(dir, "dm"), { recursive: true });
      await writeFile(join(dir, "dm/name"), `${d.dmName}\n`);
    }
    await link(join(sys, "dev/block", d.majorMinor), dir);
    await link(join(sys, "class/block", d.name), dir);
  }
  for (const d of SYSFS_DEVICES) {
    for (const slave of d.slaves ?? []) {
      const target = SYSFS_DEVICES.find((s) => s.name === slave)!;
      await link(join(sys, "devices", d.path, "slaves", slave), join(sys, "devices", target.path));
    }
  }
}
