import { readlink, realpath } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { exists, list, readLine } from "../collectors/sysfs.ts";

// Block devices by `M:m`, read from sysfs under the agent's root (never a hard-coded `/`):
//   <root>/sys/dev/block/M:m           → ../../devices/…/block/dm-3 (its kernel name)
//   <root>/sys/dev/block/M:m/dm/name   → the device-mapper name (dm devices only)
//   <root>/sys/class/block/<n>/slaves/ → the devices a dm device is built on
//   <root>/sys/class/block/<n>/partition exists for a partition; its disk is the parent dir.

export interface BlockDevice {
  readonly majorMinor: string;
  /** Kernel name (`dm-3`, `sdb1`), or null when sysfs does not know the number. */
  readonly name: string | null;
  /** Device-mapper name, for dm devices. */
  readonly dmName: string | null;
  /** Every device beneath it (the `slaves` tree) and the disk of each partition in it. */
  readonly underlying: string[];
}

const MAJOR_MINOR = /^\d+:\d+$/;
/** dm stacks are shallow (LV on mimage on PV); a cycle in a broken fixture must not hang us. */
const MAX_DEPTH = 8;

export function isMajorMinor(text: string): boolean {
  return MAJOR_MINOR.test(text);
}

/** The disk a partition belongs to, or the name itself for a whole device. */
async function wholeDevice(root: string, name: string): Promise<string> {
  const dir = join(root, "sys/class/block", name);
  if ((await readLine(join(dir, "partition"))) === null) return name;
  try {
    return basename(dirname(await realpath(dir)));
  } catch {
    return name;
  }
}

/** Every device beneath `name` (its slaves, theirs…), and the disk of each partition. */
async function beneath(
  root: string,
  name: string,
  depth: number,
  into: Set<string>,
): Promise<void> {
  if (depth >= MAX_DEPTH) return;
  for (const slave of await list(join(root, "sys/class/block", name, "slaves"), /^[^.]/)) {
    into.add(slave);
    into.add(await wholeDevice(root, slave));
    await beneath(root, slave, depth + 1, into);
  }
}

export async function resolveBlockDevice(root: string, majorMinor: string): Promise<BlockDevice> {
  const none = { majorMinor, name: null, dmName: null, underlying: [] };
  if (!isMajorMinor(majorMinor)) return none;
  let name: string;
  try {
    name = basename(await readlink(join(root, "sys/dev/block", majorMinor)));
  } catch {
    return none;
  }
  const dmName = (await exists(join(root, "sys/class/block", name, "dm")))
    ? await readLine(join(root, "sys/class/block", name, "dm/name"))
    : null;
  const underlying = new Set<string>();
  await beneath(root, name, 0, underlying);
  // A leg that is itself a partition fails with its disk.
  underlying.add(await wholeDevice(root, name));
  underlying.delete(name);
  return { majorMinor, name, dmName, underlying: [...underlying].sort() };
}

/** Resolves each distinct `M:m` once. */
export async function resolveBlockDevices(
  root: string,
  numbers: Iterable<string>,
): Promise<Map<string, BlockDevice>> {
  const resolved = new Map<string, BlockDevice>();
  for (const mm of new Set(numbers)) resolved.set(mm, await resolveBlockDevice(root, mm));
  return resolved;
}

/** Every dm device under `<root>/sys/block` by its dm name: kernel name and dm uuid. */
export async function dmDevicesByName(
  root: string,
): Promise<Map<string, { name: string; uuid: string | null }>> {
  const out = new Map<string, { name: string; uuid: string | null }>();
  const block = join(root, "sys/block");
  for (const name of await list(block, /^dm-\d+$/)) {
    const dmName = await readLine(join(block, name, "dm/name"));
    if (dmName !== null)
      out.set(dmName, { name, uuid: await readLine(join(block, name, "dm/uuid")) });
  }
  return out;
}
