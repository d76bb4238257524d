import { constants } from "node:fs";
import { type FileHandle, open, readFile, realpath, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { errno } from "@mirrorplane/clusterlog";

// Disk logs of `clustered-disk <dev>` tables (CLUSTERLOG-SPEC.md §5): where the log
// device is and how its image is read and written. The core never opens anything; it
// asks for whole-image reads and writes (`IoRequest`) and this module does them.
//
// Resolution (pitfall P34: cmirrord only looked under /dev/mapper):
// * an explicit override `M:m=<path>` (plain files for tests and simulators);
// * `M:m` → `<root>/sys/dev/block/M:m/uevent` DEVNAME → `<root>/dev/<DEVNAME>`, which
//   must be a block device with that very device number;
// * an absolute path (cmirrord accepts one) → `<root><path>`, which must be a block device.

export type IoOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly errno: number; readonly message: string };

/** An open log device. Every write is followed by fdatasync before it counts (P33). */
export interface LogDevice {
  read(length: number): Promise<IoOutcome<Uint8Array>>;
  /** Whole image at offset 0, then fdatasync. */
  writeDurably(image: Uint8Array): Promise<IoOutcome<void>>;
  close(): Promise<void>;
}

/** Opens log devices by the name a table gives them (`7:0`, `/dev/…`). */
export interface LogDeviceProvider {
  open(logDevice: string): Promise<IoOutcome<LogDevice>>;
}

export interface LogDeviceStats {
  opens: number;
  reads: number;
  writes: number;
  syncs: number;
  bytesWritten: number;
  failures: number;
}

export interface FileLogDevicesOptions {
  /** Root of the kernel files (`/sys`, `/dev`): `/` in production, a fixture in tests. */
  readonly root?: string;
  /** `M:m` → path, opened as is (created if missing). */
  readonly overrides?: ReadonlyMap<string, string>;
}

function failure(error: unknown, what: string): { ok: false; errno: number; message: string } {
  const err = error as NodeJS.ErrnoException;
  const code = typeof err?.errno === "number" && err.errno < 0 ? err.errno : -errno.EIO;
  return { ok: false, errno: code, message: `${what}: ${err?.message ?? String(error)}` };
}

/** Linux device number split (glibc `major()`/`minor()` for the values stat returns). */
export function splitDeviceNumber(rdev: number): { major: number; minor: number } {
  const high = Math.floor(rdev / 2 ** 32);
  const low = rdev >>> 0;
  return {
    major: ((low >>> 8) & 0xfff) | ((high & 0xfffff000) >>> 0),
    minor: (low & 0xff) | ((low >>> 12) & 0xfff00),
  };
}

const DEVICE_NUMBER = /^(\d+):(\d+)$/;

export class FileLogDevices implements LogDeviceProvider {
  readonly stats: LogDeviceStats = {
    opens: 0,
    reads: 0,
    writes: 0,
    syncs: 0,
    bytesWritten: 0,
    failures: 0,
  };
  readonly #root: string;
  readonly #overrides: ReadonlyMap<string, string>;

  constructor(options: FileLogDevicesOptions = {}) {
    this.#root = options.root ?? "/";
    this.#overrides = options.overrides ?? new Map();
  }

  /** Where `logDevice` lives on this host, and whether it must be a block device. */
  async resolve(logDevice: string): Promise<IoOutcome<{ path: string; blockDevice: boolean }>> {
    const override = this.#overrides.get(logDevice);
    if (override !== undefined) return { ok: true, value: { path: override, blockDevice: false } };
    const number = DEVICE_NUMBER.exec(logDevice);
    try {
      if (number) {
        const sysDir = join(this.#root, "sys/dev/block", logDevice);
        const name = await deviceName(sysDir);
        const path = join(this.#root, "dev", name);
        const st = await stat(path);
        const { major, minor } = splitDeviceNumber(st.rdev);
        if (!st.isBlockDevice() || `${major}:${minor}` !== logDevice) {
          return {
            ok: false,
            errno: -errno.ENXIO,
            message: `${path} is not block device ${logDevice}`,
          };
        }
        return { ok: true, value: { path, blockDevice: true } };
      }
      if (logDevice.startsWith("/")) {
        const path = join(this.#root, logDevice);
        const st = await stat(path);
        if (!st.isBlockDevice()) {
          return { ok: false, errno: -errno.EINVAL, message: `${path} is not a block device` };
        }
        return { ok: true, value: { path, blockDevice: true } };
      }
    } catch (error) {
      return failure(error, `resolving log device ${logDevice}`);
    }
    return { ok: false, errno: -errno.ENOENT, message: `no log device named ${logDevice}` };
  }

  async open(logDevice: string): Promise<IoOutcome<LogDevice>> {
    const resolved = await this.resolve(logDevice);
    if (!resolved.ok) return resolved;
    const { path, blockDevice } = resolved.value;
    let handle: FileHandle;
    let writable = true;
    try {
      handle = await open(
        path,
        blockDevice ? constants.O_RDWR : constants.O_RDWR | constants.O_CREAT,
        0o600,
      );
    } catch (error) {
      // A read-only device can still be read at a master resume; its writes then fail
      // and the log goes `D` (spec §2.5, scenario 17).
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EROFS" && code !== "EACCES" && code !== "EPERM") {
        return failure(error, `opening ${path}`);
      }
      try {
        handle = await open(path, constants.O_RDONLY);
        writable = false;
      } catch (again) {
        return failure(again, `opening ${path}`);
      }
    }
    this.stats.opens++;
    return { ok: true, value: new FileLogDevice(handle, path, writable, this.stats) };
  }
}

async function deviceName(sysDir: string): Promise<string> {
  try {
    const uevent = await readFile(join(sysDir, "uevent"), "utf8");
    const line = uevent.split("\n").find((l) => l.startsWith("DEVNAME="));
    if (line) return line.slice("DEVNAME=".length).trim();
  } catch {
    // fall through to the link's name
  }
  return basename(await realpath(sysDir));
}

class FileLogDevice implements LogDevice {
  readonly #handle: FileHandle;
  readonly #path: string;
  readonly #writable: boolean;
  readonly #stats: LogDeviceStats;

  constructor(handle: FileHandle, path: string, writable: boolean, stats: LogDeviceStats) {
    this.#handle = handle;
    this.#path = path;
    this.#writable = writable;
    this.#stats = stats;
  }

  async read(length: number): Promise<IoOutcome<Uint8Array>> {
    const buffer = new Uint8Array(length);
    try {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await this.#handle.read(buffer, done, length - done, done);
        if (bytesRead === 0) break; // a short (fresh) file reads as zeros: no magic, new log
        done += bytesRead;
      }
      this.#stats.reads++;
      return { ok: true, value: buffer };
    } catch (error) {
      this.#stats.failures++;
      return failure(error, `reading ${this.#path}`);
    }
  }

  async writeDurably(image: Uint8Array): Promise<IoOutcome<void>> {
    if (!this.#writable) {
      this.#stats.failures++;
      return { ok: false, errno: -errno.EIO, message: `${this.#path} is read-only` };
    }
    try {
      let done = 0;
      while (done < image.length) {
        const { bytesWritten } = await this.#handle.write(image, done, image.length - done, done);
        if (bytesWritten === 0)
          throw Object.assign(new Error("short write"), { errno: -errno.EIO });
        done += bytesWritten;
      }
      this.#stats.writes++;
      this.#stats.bytesWritten += image.length;
      // spec §4.7 [REC], pitfall P33: durable before the FLUSH reply.
      await this.#handle.datasync();
      this.#stats.syncs++;
      return { ok: true, value: undefined };
    } catch (error) {
      this.#stats.failures++;
      return failure(error, `writing ${this.#path}`);
    }
  }

  async close(): Promise<void> {
    await this.#handle.close().catch(() => {});
  }
}
