import { join } from "node:path";
import { list, readLine } from "./sysfs.ts";

/**
 * Device state files (KERNEL-SOURCES.md §3.2): NVMe controllers
 * (`/sys/class/nvme/nvmeN/state`) and SCSI disks (`/sys/block/sdX/device/state`).
 * Polling the states catches resets even when the kernel log is rate-limited.
 */
export interface DeviceState {
  device: string;
  type: "nvme" | "scsi";
  state: string;
}

export type TDeviceHealth = "ok" | "transient" | "failed";

/** What a state means for the device's I/O. */
export function deviceHealth(type: DeviceState["type"], state: string): TDeviceHealth {
  if (type === "nvme") {
    if (state === "live") return "ok";
    if (state === "new" || state === "resetting" || state === "connecting") return "transient";
    return "failed"; // deleting, deleting (no IO), dead, unknown state
  }
  if (state === "running" || state === "created") return "ok";
  if (state === "blocked" || state === "created-blocked" || state === "quiesce") return "transient";
  return "failed"; // cancel, deleted, offline, transport-offline
}

export async function readDeviceStates(root: string): Promise<DeviceState[]> {
  const out: DeviceState[] = [];
  const nvmeDir = join(root, "sys/class/nvme");
  for (const ctrl of await list(nvmeDir, /^nvme\d+$/)) {
    const state = await readLine(join(nvmeDir, ctrl, "state"));
    if (state !== null) out.push({ device: ctrl, type: "nvme", state });
  }
  const blockDir = join(root, "sys/block");
  for (const disk of await list(blockDir, /^sd[a-z]+$/)) {
    const state = await readLine(join(blockDir, disk, "device/state"));
    if (state !== null) out.push({ device: disk, type: "scsi", state });
  }
  return out;
}
