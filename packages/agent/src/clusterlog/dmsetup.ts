import { execFile } from "node:child_process";

// Suspending and resuming a mirror device with dmsetup (docs/KERNEL-BRIDGE.md): what the
// agent runs to re-arm its kernel's in_sync hint (rearm.ts). The log named in
// dm-log-userspace requests is a *log* uuid (the disk log LV's, or the mirror's own for a
// core log), so the mirror device is found by its table, where the uuid is the first
// argument of the `userspace` log:
//
//   vg-lv: 0 2097152 mirror userspace 4 LVM-Xy…z clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors

export interface MirrorTable {
  /** The dm device name (`dmsetup` accepts it everywhere). */
  readonly device: string;
  readonly logUuid: string;
}

/** Mirror devices with a userspace log, from `dmsetup table --target mirror` output. */
export function parseMirrorTables(output: string): MirrorTable[] {
  const found: MirrorTable[] = [];
  for (const line of output.split("\n")) {
    const colon = line.indexOf(": ");
    if (colon <= 0) continue;
    const device = line.slice(0, colon);
    const fields = line
      .slice(colon + 2)
      .trim()
      .split(/\s+/);
    // <start> <length> mirror <log type> <#log args> <log args…>
    if (fields[2] !== "mirror" || fields[3] !== "userspace") continue;
    const argc = Number(fields[4]);
    const uuid = fields[5];
    if (!Number.isInteger(argc) || argc < 1 || !uuid) continue;
    found.push({ device, logUuid: uuid });
  }
  return found;
}

export class DmsetupError extends Error {
  override name = "DmsetupError";
}

export interface DmsetupOptions {
  /** The dmsetup binary (default: `dmsetup` on PATH). */
  readonly binary?: string;
  /** Per call; a suspend waits for in-flight I/O. Default 60 s. */
  readonly timeoutMs?: number;
}

function run(args: string[], options: DmsetupOptions): Promise<string> {
  const binary = options.binary ?? "dmsetup";
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      args,
      { timeout: options.timeoutMs ?? 60_000, encoding: "utf8" },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        const detail = (stderr || error.message).trim().split("\n").slice(-2).join(" / ");
        reject(new DmsetupError(`${binary} ${args.join(" ")} failed: ${detail}`));
      },
    );
  });
}

/**
 * `dmsetup suspend` + `dmsetup resume` of every mirror device whose userspace log is
 * `logUuid` (one per host in a cluster). The kernel sends PRESUSPEND/POSTSUSPEND and
 * RESUME to this very agent meanwhile, so the calls are asynchronous. A resume is
 * attempted even when the suspend failed, so the device is never left suspended by us.
 */
export async function dmsetupSuspendResume(
  logUuid: string,
  options: DmsetupOptions = {},
): Promise<string[]> {
  const tables = parseMirrorTables(await run(["table", "--target", "mirror"], options));
  const devices = tables.filter((t) => t.logUuid === logUuid).map((t) => t.device);
  if (devices.length === 0) {
    throw new DmsetupError(`no mirror device on this host has the userspace log ${logUuid}`);
  }
  for (const device of devices) {
    let suspendError: unknown = null;
    try {
      await run(["suspend", device], options);
    } catch (error) {
      suspendError = error;
    }
    await run(["resume", device], options);
    if (suspendError) throw suspendError;
  }
  return devices;
}

/**
 * The block devices (`/dev/dm-N`) of the mirrors on this host whose userspace log is
 * `logUuid`, for reading them (wake.ts). The dm device's kernel name is `dm-<minor>`, which
 * devtmpfs creates whether or not udev runs.
 */
export async function mirrorBlockDevices(
  logUuid: string,
  options: DmsetupOptions = {},
): Promise<string[]> {
  const tables = parseMirrorTables(await run(["table", "--target", "mirror"], options));
  const names = new Set(tables.filter((t) => t.logUuid === logUuid).map((t) => t.device));
  if (names.size === 0) {
    throw new DmsetupError(`no mirror device on this host has the userspace log ${logUuid}`);
  }
  const info = await run(
    ["info", "-c", "--noheadings", "--separator", " ", "-o", "minor,name"],
    options,
  );
  const devices: string[] = [];
  for (const line of info.split("\n")) {
    // The minor first (columns may be padded): the rest of the line is the name.
    const m = /^\s*(\d+)\s+(.*?)\s*$/.exec(line);
    if (m && names.has(m[2]!)) devices.push(`/dev/dm-${m[1]}`);
  }
  return devices;
}

/**
 * One direct read of the first `bytes` of each device: a bio through the mirror's map,
 * which (with a userspace log, whose `in_sync` cannot answer without blocking) queues every
 * read on the mirror's worker and so wakes it. `dd` because O_DIRECT needs an aligned
 * buffer, which Node cannot allocate.
 */
export function readDirect(
  device: string,
  bytes: number,
  options: { binary?: string; timeoutMs?: number } = {},
): Promise<void> {
  const binary = options.binary ?? "dd";
  return new Promise((resolve, reject) => {
    execFile(
      binary,
      [`if=${device}`, "of=/dev/null", `bs=${bytes}`, "count=1", "iflag=direct", "status=none"],
      { timeout: options.timeoutMs ?? 30_000, encoding: "utf8" },
      (error, _stdout, stderr) => {
        if (!error) return resolve();
        const detail = (stderr || error.message).trim().split("\n").slice(-1).join("");
        reject(new DmsetupError(`${binary} if=${device} iflag=direct failed: ${detail}`));
      },
    );
  });
}
