import { z } from "zod";
import { ZLegHealth } from "./mirrors.ts";

// A node's disk inventory (issue 13): every whole block device the kernel lists under
// /sys/block, what sysfs says about it (KERNEL-SOURCES.md §3.2), the mirror legs on it, and
// SMART health as smartmontools' `smartctl --json=c -a` reports it.

/** What kind of device it is, from its sysfs place (name, driver path, dm/loop/md dirs). */
export const diskKinds = [
  "nvme",
  "sata",
  "sas",
  "scsi",
  "usb",
  "virtio",
  "mmc",
  "loop",
  "dm",
  "md",
  "pmem",
  "other",
] as const;
export const ZDiskKind = z.enum(diskKinds);
export type TDiskKind = z.infer<typeof ZDiskKind>;

/**
 * SMART as the agent last read it:
 *  * `passed`: smartctl read the device and it reports no problem;
 *  * `warning`: it passes, but counters an operator replaces drives over are not zero
 *    (media errors, reallocated/pending/uncorrectable sectors, a prefail attribute that was
 *    at its threshold in the past);
 *  * `failing`: the drive's own verdict is FAILING, an NVMe critical warning is set, or a
 *    prefail attribute is at or below its threshold now;
 *  * `unavailable`: no SMART for this device (a loop or dm device, a virtual disk, no
 *    smartctl, a timeout) — `reasons` says why, in smartctl's words where it gave them;
 *  * `pending`: not read yet (the first read runs shortly after the agent starts).
 */
export const smartStatuses = ["passed", "warning", "failing", "unavailable", "pending"] as const;
export const ZSmartStatus = z.enum(smartStatuses);
export type TSmartStatus = z.infer<typeof ZSmartStatus>;

export const ZSmart = z.object({
  status: ZSmartStatus,
  /** Why it is failing, warning or unavailable, one sentence each. */
  reasons: z.array(z.string()),
  /** When smartctl last ran for it (null: never). */
  readAt: z.date().nullable(),
  /** smartctl's exit status (a bitmask, smartctl(8) "RETURN VALUES"), and what its bits mean. */
  exitStatus: z.number().nullable(),
  exitBits: z.array(z.string()),
  /** `NVMe`, `ATA`, `SCSI` as smartctl's `device.protocol`. */
  protocol: z.string().nullable(),
  model: z.string().nullable(),
  serial: z.string().nullable(),
  firmware: z.string().nullable(),
  temperatureC: z.number().nullable(),
  powerOnHours: z.number().nullable(),
  /** NVMe: percentage of the rated endurance used (may exceed 100). */
  percentageUsed: z.number().nullable(),
  availableSparePercent: z.number().nullable(),
  availableSpareThresholdPercent: z.number().nullable(),
  /** NVMe critical_warning bitfield (0x01 spare, 0x02 temperature, 0x04 reliability, 0x08 read-only, 0x10 volatile backup, 0x20 PMR read-only). */
  criticalWarning: z.number().nullable(),
  mediaErrors: z.number().nullable(),
  /** ATA attributes 5, 197, 198 (raw values). */
  reallocatedSectors: z.number().nullable(),
  pendingSectors: z.number().nullable(),
  uncorrectableSectors: z.number().nullable(),
});
export type TSmart = z.infer<typeof ZSmart>;

/** A mirror leg on (or built on) a disk, as this host's kernel has it. */
export const ZDiskLeg = z.object({
  /** The mirror's dm name. */
  mirror: z.string(),
  logUuid: z.string().nullable(),
  /** The leg's position in the table. */
  index: z.number(),
  /** The leg's own device (`dm-3`, `sdb1`): this disk, or a device built on it. */
  device: z.string(),
  health: ZLegHealth,
});
export type TDiskLeg = z.infer<typeof ZDiskLeg>;

export const ZDisk = z.object({
  /** Kernel name (`nvme0n1`, `sda`, `dm-3`, `loop0`). */
  name: z.string(),
  /** `M:m` (sysfs `dev`). */
  majorMinor: z.string().nullable(),
  kind: ZDiskKind,
  /** sysfs `size` × 512. */
  sizeBytes: z.number().nullable(),
  model: z.string().nullable(),
  vendor: z.string().nullable(),
  serial: z.string().nullable(),
  wwid: z.string().nullable(),
  firmware: z.string().nullable(),
  /** queue/rotational: a spinning disk. */
  rotational: z.boolean().nullable(),
  removable: z.boolean().nullable(),
  /** The device's state file (NVMe controller `state`, SCSI `device/state`). */
  state: z.string().nullable(),
  /** NVMe: the controller the namespace is on. */
  nvme: z
    .object({
      controller: z.string(),
      transport: z.string().nullable(),
      cntlid: z.string().nullable(),
      nsid: z.string().nullable(),
    })
    .nullable(),
  /** Loop devices: the file behind it. */
  backingFile: z.string().nullable(),
  /** dm devices: the dm name and uuid (`LVM-…` for LVM) and the devices it is built on. */
  dm: z
    .object({
      name: z.string().nullable(),
      uuid: z.string().nullable(),
      slaves: z.array(z.string()),
    })
    .nullable(),
  partitions: z.array(z.string()),
  /** Devices built on it or its partitions (sysfs `holders`). */
  holders: z.array(z.string()),
  legs: z.array(ZDiskLeg),
  smart: ZSmart,
});
export type TDisk = z.infer<typeof ZDisk>;

export const ZDiskInventory = z.object({
  disks: z.array(ZDisk),
  /** When sysfs was read (every call); SMART has its own `readAt` per disk. */
  readAt: z.date(),
  /** Why no leg could be placed on disks (no dmsetup, no dm-mirror), else null. */
  legsUnknownReason: z.string().nullable(),
  smartctl: z.object({
    /** The command the agent runs (`--smartctl`). */
    path: z.string(),
    /** How often SMART is read (ms); null: SMART reads are off. */
    intervalMs: z.number().nullable(),
  }),
});
export type TDiskInventory = z.infer<typeof ZDiskInventory>;

/** Re-read SMART now: one device, or every device (omitted). */
export const ZSmartRefresh = z.object({
  device: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, "a kernel device name")
    .optional(),
});
