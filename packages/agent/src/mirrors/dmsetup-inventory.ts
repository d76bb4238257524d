import { execFile } from "node:child_process";
import {
  type BlockDevice,
  dmDevicesByName,
  isMajorMinor,
  resolveBlockDevices,
} from "./block-devices.ts";
import { type MirrorTableLine, parseMirrorStatus, parseMirrorTable } from "./dm-mirror.ts";
import {
  type MirrorInfo,
  type MirrorInventory,
  type MirrorInventoryResult,
  withRoles,
} from "./inventory.ts";

// The mirrors this host's kernel runs, from `dmsetup table --target mirror` and
// `dmsetup status --target mirror` (dm-mirror.ts), legs resolved through sysfs under the
// agent's root (block-devices.ts). A host without device-mapper, without dmsetup, or where
// dmsetup fails lists no mirror and says why: the agent never fails because of it.

export interface DmsetupInventoryOptions {
  /** Root of the kernel files (sysfs) the agent reads; `/` on a host. */
  readonly root: string;
  /** The dmsetup binary (default: `dmsetup` on PATH). */
  readonly binary?: string;
  /** Per dmsetup call (default 5 s: table and status do not wait for I/O). */
  readonly timeoutMs?: number;
  /** Answers are reused this long, so dashboards polling many mirrors run dmsetup once. */
  readonly cacheMs?: number;
  readonly now?: () => number;
}

function dmsetup(binary: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: timeoutMs, encoding: "utf8" }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
      const detail = missing
        ? "not installed"
        : // dmsetup says what is wrong first (e.g. no /dev/mapper/control), then "Command failed."
          (stderr || error.message).trim().split("\n").slice(0, 2).join(" / ");
      reject(new Error(`${binary} ${args.join(" ")}: ${detail}`));
    });
  });
}

/** A leg or log device number by its kernel name (and dm name), or as `M:m` when sysfs has none. */
function legFrom(device: string, resolved: Map<string, BlockDevice>) {
  const block = resolved.get(device);
  return {
    device: block?.name ?? device,
    label: block?.dmName ?? null,
    majorMinor: isMajorMinor(device) ? device : null,
    underlying: block?.underlying ?? [],
  };
}

/**
 * Joins table and status lines of the same target (device name and start sector) and
 * resolves leg numbers under `root`. Pure but for the sysfs reads.
 */
export async function mirrorInventory(
  tableOutput: string,
  statusOutput: string,
  root: string,
): Promise<MirrorInfo[]> {
  const tables = parseMirrorTable(tableOutput);
  const statuses = new Map(parseMirrorStatus(statusOutput).map((s) => [`${s.name}@${s.start}`, s]));
  const numbers = tables.flatMap((t) => [
    ...t.legs.map((l) => l.device),
    ...(t.logDevice ? [t.logDevice] : []),
  ]);
  const resolved = await resolveBlockDevices(root, numbers);
  const dmDevices = tables.length > 0 ? await dmDevicesByName(root) : new Map();
  return tables.map((t: MirrorTableLine): MirrorInfo => {
    const status = statuses.get(`${t.name}@${t.start}`);
    // Both list the legs in table order; a status from another table load (a reload
    // between the two calls) is not trusted.
    const healthKnown =
      status !== undefined &&
      status.legs.length === t.legs.length &&
      t.legs.every((leg, i) => status.legs[i]!.device === leg.device);
    const legs = t.legs.map((leg, i) => ({
      ...legFrom(leg.device, resolved),
      health: healthKnown ? status.legs[i]!.health : ("U" as const),
    }));
    const log = t.logDevice ? legFrom(t.logDevice, resolved) : null;
    return {
      name: t.name,
      logUuid: t.logUuid,
      logType: t.logType,
      regionSectors: t.regionSectors,
      sizeSectors: t.sizeSectors,
      legs: withRoles(legs),
      healthKnown,
      logDevice: log && {
        device: log.device,
        majorMinor: log.majorMinor,
        // STATUS_INFO is answered by the log's server node (its device number may differ
        // from ours, spec §2.15); no status line, or no answer (COM_FAILURE): unknown.
        health: status?.logHealth ?? null,
      },
      table: t.text,
      dmUuid: dmDevices.get(t.name)?.uuid ?? null,
    };
  });
}

/** Reads of the table/status pair before a mirror whose table keeps changing is reported unknown. */
const RELOAD_RETRIES = 3;

export class DmsetupMirrorInventory implements MirrorInventory {
  readonly #options: DmsetupInventoryOptions;
  readonly #now: () => number;
  #cached: { at: number; result: Promise<MirrorInventoryResult> } | null = null;

  constructor(options: DmsetupInventoryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  list(): Promise<MirrorInventoryResult> {
    const now = this.#now();
    const cached = this.#cached;
    if (cached && now - cached.at < (this.#options.cacheMs ?? 1000)) return cached.result;
    const result = this.#read();
    this.#cached = { at: now, result };
    return result;
  }

  async #read(): Promise<MirrorInventoryResult> {
    const binary = this.#options.binary ?? "dmsetup";
    const timeoutMs = this.#options.timeoutMs ?? 5000;
    try {
      // Table first: a status line that no longer matches its table (a reload in between,
      // as LVM's repair does) leaves its legs unknown, so the pair is read again; a table
      // still changing after that is reported with `healthKnown: false`.
      let mirrors: MirrorInfo[] = [];
      for (let attempt = 0; attempt < RELOAD_RETRIES; attempt++) {
        const table = await dmsetup(binary, ["table", "--target", "mirror"], timeoutMs);
        const status = await dmsetup(binary, ["status", "--target", "mirror"], timeoutMs);
        mirrors = await mirrorInventory(table, status, this.#options.root);
        if (mirrors.every((m) => m.healthKnown)) break;
      }
      return { mirrors, reason: null };
    } catch (error) {
      return { mirrors: [], reason: error instanceof Error ? error.message : String(error) };
    }
  }
}
