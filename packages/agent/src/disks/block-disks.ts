import { realpath } from "node:fs/promises";
import { basename, join } from "node:path";
import type { TDiskKind } from "@mirrorplane/contracts";
import { exists, list, readInteger, readLine } from "../collectors/sysfs.ts";

// Whole block devices as sysfs lists them under the agent's root (KERNEL-SOURCES.md §3.2):
//   <root>/sys/block/<name>            → ../devices/…/block/<name> (the driver's place)
//   <name>/dev, size (512-byte sectors), removable, queue/rotational
//   <name>/device/{model,vendor,serial,wwid,state,rev}   SCSI/ATA (`vendor` is "ATA" for SATA)
//   <name>/{wwid,nsid} and <name>/device → nvmeN: {model,serial,firmware_rev,state,transport,cntlid}
//   <name>/serial (virtio), <name>/loop/backing_file, <name>/dm/{name,uuid}, <name>/md/
//   <name>/<name>N/partition for partitions, <name>/{slaves,holders}/
// A device with size 0 (an unbound loop device, an empty drive) holds nothing and is left out;
// so are zram and ram disks (memory, not storage).

export interface BlockDisk {
  readonly name: string;
  readonly majorMinor: string | null;
  readonly kind: TDiskKind;
  readonly sizeBytes: number | null;
  readonly model: string | null;
  readonly vendor: string | null;
  readonly serial: string | null;
  readonly wwid: string | null;
  readonly firmware: string | null;
  readonly rotational: boolean | null;
  readonly removable: boolean | null;
  readonly state: string | null;
  readonly nvme: {
    readonly controller: string;
    readonly transport: string | null;
    readonly cntlid: string | null;
    readonly nsid: string | null;
  } | null;
  readonly backingFile: string | null;
  readonly dm: {
    readonly name: string | null;
    readonly uuid: string | null;
    readonly slaves: string[];
  } | null;
  readonly partitions: string[];
  readonly holders: string[];
}

const SKIPPED = /^(zram|ram)\d+$/;

function flag(value: number | null): boolean | null {
  return value === null ? null : value !== 0;
}

/** The driver path sysfs links the device to, root-relative (`devices/pci…/ata1/…`). */
async function devicePath(dir: string): Promise<string> {
  try {
    return await realpath(dir);
  } catch {
    return dir;
  }
}

/** What kind of device: its name and where its driver put it. */
export function diskKind(
  name: string,
  path: string,
  has: { dm: boolean; md: boolean; loop: boolean },
): TDiskKind {
  if (has.dm || /^dm-\d+$/.test(name)) return "dm";
  if (has.md || /^md\d+/.test(name)) return "md";
  if (has.loop || /^loop\d+$/.test(name)) return "loop";
  if (/^nvme\d+(c\d+)?n\d+$/.test(name)) return "nvme";
  if (/^pmem\d+/.test(name)) return "pmem";
  if (/^mmcblk\d+$/.test(name)) return "mmc";
  if (/^vd[a-z]+$/.test(name) || path.includes("/virtio")) return "virtio";
  if (/^sd[a-z]+$/.test(name)) {
    if (path.includes("/usb")) return "usb";
    if (/\/ata\d+\//.test(path)) return "sata";
    if (/\/(port-|end_device-|expander-)/.test(path)) return "sas";
    return "scsi";
  }
  return "other";
}

/** Strips the padding SCSI INQUIRY strings carry (`ATA     `, `WDC WD40EFRX-68N`). */
function text(value: string | null): string | null {
  const t = value?.trim() ?? "";
  return t.length > 0 ? t : null;
}

async function readDisk(root: string, name: string): Promise<BlockDisk | null> {
  const dir = join(root, "sys/block", name);
  const sectors = await readInteger(join(dir, "size"));
  if (sectors === 0) return null;
  const path = await devicePath(dir);
  const has = {
    dm: await exists(join(dir, "dm")),
    md: await exists(join(dir, "md")),
    loop: await exists(join(dir, "loop")),
  };
  const kind = diskKind(name, path, has);
  const device = join(dir, "device");
  let nvme: BlockDisk["nvme"] = null;
  let model: string | null;
  let serial: string | null;
  let firmware: string | null;
  let state: string | null;
  if (kind === "nvme") {
    // The namespace's `device` is its controller (nvmeN); a multipath head's is the subsystem.
    let controller = name.replace(/n\d+$/, "").replace(/c\d+$/, "");
    try {
      controller = basename(await realpath(device));
    } catch {}
    model = text(await readLine(join(device, "model")));
    serial = text(await readLine(join(device, "serial")));
    firmware = text(await readLine(join(device, "firmware_rev")));
    state = await readLine(join(device, "state"));
    nvme = {
      controller,
      transport: await readLine(join(device, "transport")),
      cntlid: await readLine(join(device, "cntlid")),
      nsid: await readLine(join(dir, "nsid")),
    };
  } else {
    model = text(await readLine(join(device, "model")));
    // SCSI disks have no serial file (it is in VPD page 0x80); virtio has `serial` on the disk.
    serial =
      text(await readLine(join(dir, "serial"))) ?? text(await readLine(join(device, "serial")));
    firmware = text(await readLine(join(device, "rev")));
    state = await readLine(join(device, "state"));
  }
  const partitions: string[] = [];
  for (const entry of await list(dir, new RegExp(`^${name}p?\\d+$`)))
    if ((await readLine(join(dir, entry, "partition"))) !== null) partitions.push(entry);
  const holders = new Set(await list(join(dir, "holders"), /^[^.]/));
  for (const p of partitions)
    for (const h of await list(join(dir, p, "holders"), /^[^.]/)) holders.add(h);
  return {
    name,
    majorMinor: await readLine(join(dir, "dev")),
    kind,
    sizeBytes: sectors === null ? null : sectors * 512,
    model,
    vendor: text(await readLine(join(device, "vendor"))),
    serial,
    wwid: text(await readLine(join(dir, "wwid"))) ?? text(await readLine(join(device, "wwid"))),
    firmware,
    rotational: flag(await readInteger(join(dir, "queue/rotational"))),
    removable: flag(await readInteger(join(dir, "removable"))),
    state,
    nvme,
    backingFile: has.loop ? await readLine(join(dir, "loop/backing_file")) : null,
    dm: has.dm
      ? {
          name: await readLine(join(dir, "dm/name")),
          uuid: await readLine(join(dir, "dm/uuid")),
          slaves: await list(join(dir, "slaves"), /^[^.]/),
        }
      : null,
    partitions,
    holders: [...holders].sort(),
  };
}

/** Every whole block device under `<root>/sys/block` that holds something. */
export async function readBlockDisks(root: string): Promise<BlockDisk[]> {
  const out: BlockDisk[] = [];
  for (const name of await list(join(root, "sys/block"), /^[^.]/)) {
    if (SKIPPED.test(name)) continue;
    const disk = await readDisk(root, name);
    if (disk) out.push(disk);
  }
  return out;
}
