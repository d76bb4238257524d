import { execFile } from "node:child_process";
import type { TSmart } from "@mirrorplane/contracts";

// SMART through smartmontools: `smartctl --json=c -a -n standby /dev/<name>`, run without a
// shell, with a timeout. Its JSON (smartctl 7.x, `json_format_version` [1, 0]) is parsed
// here; the fields used:
//   smartctl.exit_status, smartctl.messages[].string      what smartctl itself said
//   device.protocol ("NVMe", "ATA", "SCSI"), model_name, serial_number, firmware_version
//   smart_status.passed                                   the drive's own verdict
//   temperature.current, power_on_time.hours
//   nvme_smart_health_information_log: critical_warning, percentage_used, media_errors,
//     available_spare, available_spare_threshold
//   ata_smart_attributes.table[]: id, name, value, thresh, when_failed, raw.value
//     (5 Reallocated_Sector_Ct, 197 Current_Pending_Sector, 198 Offline_Uncorrectable)
// `-n standby` leaves a spun-down disk asleep (exit bit 1 and a message): its last reading
// is kept rather than waking it every interval.

/** smartctl(8) RETURN VALUES: bit → meaning. */
export const SMARTCTL_EXIT_BITS: readonly string[] = [
  "command line did not parse",
  "device open failed, or it is in a low-power mode",
  "a SMART or other ATA command failed, or a checksum error in a SMART data structure",
  "SMART status check returned DISK FAILING",
  "prefail attributes are at or below their threshold",
  "SMART status passed, but usage or prefail attributes were at or below their threshold in the past",
  "the device error log contains records of errors",
  "the device self-test log contains records of errors",
];

export function exitBits(status: number): string[] {
  return SMARTCTL_EXIT_BITS.filter((_, bit) => (status & (1 << bit)) !== 0);
}

const NVME_CRITICAL_WARNING: readonly string[] = [
  "available spare is below its threshold",
  "temperature is outside its thresholds",
  "reliability is degraded by media or internal errors",
  "media is read-only",
  "the volatile memory backup device failed",
  "the persistent memory region is read-only",
];

const ATA_REALLOCATED = 5;
const ATA_PENDING = 197;
const ATA_UNCORRECTABLE = 198;

type TJson = Record<string, unknown>;

function obj(value: unknown): TJson | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as TJson)
    : null;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function str(value: unknown): string | null {
  return typeof value === "string" && value.trim().length > 0 ? value.trim() : null;
}

/** A SMART reading with nothing in it: what `pending` and `unavailable` carry. */
export function emptySmart(status: "pending" | "unavailable", reasons: string[] = []): TSmart {
  return {
    status,
    reasons,
    readAt: null,
    exitStatus: null,
    exitBits: [],
    protocol: null,
    model: null,
    serial: null,
    firmware: null,
    temperatureC: null,
    powerOnHours: null,
    percentageUsed: null,
    availableSparePercent: null,
    availableSpareThresholdPercent: null,
    criticalWarning: null,
    mediaErrors: null,
    reallocatedSectors: null,
    pendingSectors: null,
    uncorrectableSectors: null,
  };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

/**
 * smartctl's JSON and exit status as health. Pure. `exitStatus` is the process's; the JSON's
 * `smartctl.exit_status` is used when the process's is unknown.
 */
export function parseSmartctl(stdout: string, exitStatus: number | null, readAt: Date): TSmart {
  let json: TJson | null = null;
  try {
    json = obj(JSON.parse(stdout));
  } catch {}
  const smartctl = obj(json?.smartctl);
  const status = exitStatus ?? num(smartctl?.exit_status);
  const messages = Array.isArray(smartctl?.messages)
    ? smartctl.messages.flatMap((m) => {
        const s = str(obj(m)?.string);
        return s ? [s] : [];
      })
    : [];
  const base = {
    ...emptySmart("unavailable"),
    readAt,
    exitStatus: status,
    exitBits: status === null ? [] : exitBits(status),
  };
  if (!json) {
    const firstLine = stdout.trim().split("\n")[0];
    return {
      ...base,
      reasons: [`smartctl gave no JSON${firstLine ? `: ${firstLine.slice(0, 200)}` : ""}`],
    };
  }
  const smartStatus = obj(json.smart_status);
  const passed = typeof smartStatus?.passed === "boolean" ? smartStatus.passed : null;
  const device = obj(json.device);
  // Bits 0–1: smartctl could not open or identify the device: no SMART, in its words.
  if (status !== null && (status & 0b11) !== 0 && passed === null) {
    return {
      ...base,
      reasons: messages.length > 0 ? messages : exitBits(status & 0b11),
    };
  }
  const nvme = obj(json.nvme_smart_health_information_log);
  const ata = obj(json.ata_smart_attributes);
  const table = Array.isArray(ata?.table) ? ata.table.map(obj).filter((a) => a !== null) : [];
  const attribute = (id: number) => table.find((a) => a.id === id) ?? null;
  const raw = (id: number) => num(obj(attribute(id)?.raw)?.value);
  const reading: TSmart = {
    ...base,
    status: "passed",
    protocol: str(device?.protocol),
    model: str(json.model_name),
    serial: str(json.serial_number),
    firmware: str(json.firmware_version),
    temperatureC: num(obj(json.temperature)?.current),
    powerOnHours: num(obj(json.power_on_time)?.hours),
    percentageUsed: num(nvme?.percentage_used),
    availableSparePercent: num(nvme?.available_spare),
    availableSpareThresholdPercent: num(nvme?.available_spare_threshold),
    criticalWarning: num(nvme?.critical_warning),
    mediaErrors: num(nvme?.media_errors),
    reallocatedSectors: raw(ATA_REALLOCATED),
    pendingSectors: raw(ATA_PENDING),
    uncorrectableSectors: raw(ATA_UNCORRECTABLE),
  };
  const failing: string[] = [];
  const warning: string[] = [];
  if (passed === false || (status !== null && (status & 0b1000) !== 0))
    failing.push("the drive's SMART overall-health self-assessment is FAILED");
  const cw = reading.criticalWarning ?? 0;
  if (cw !== 0) {
    const bits = NVME_CRITICAL_WARNING.filter((_, bit) => (cw & (1 << bit)) !== 0);
    failing.push(
      `NVMe critical warning 0x${cw.toString(16).padStart(2, "0")}: ${bits.join("; ") || "unknown bits"}`,
    );
  }
  // An ATA prefail attribute at or below its threshold now ("FAILING_NOW").
  for (const a of table) {
    if (a.when_failed === "now")
      failing.push(`attribute ${a.id} ${str(a.name) ?? ""} is at or below its threshold`.trim());
  }
  if (status !== null && (status & 0b10000) !== 0 && !table.some((a) => a.when_failed === "now"))
    failing.push(SMARTCTL_EXIT_BITS[4]!);
  if ((reading.mediaErrors ?? 0) > 0)
    warning.push(
      `${plural(reading.mediaErrors!, "media error")} (unrecovered data integrity errors)`,
    );
  if ((reading.reallocatedSectors ?? 0) > 0)
    warning.push(`${plural(reading.reallocatedSectors!, "reallocated sector")}`);
  if ((reading.pendingSectors ?? 0) > 0)
    warning.push(`${plural(reading.pendingSectors!, "sector")} pending reallocation`);
  if ((reading.uncorrectableSectors ?? 0) > 0)
    warning.push(`${plural(reading.uncorrectableSectors!, "offline uncorrectable sector")}`);
  if ((reading.percentageUsed ?? 0) >= 100)
    warning.push(`${reading.percentageUsed} % of the rated endurance used`);
  if (status !== null && (status & 0b100000) !== 0) warning.push(SMARTCTL_EXIT_BITS[5]!);
  if (failing.length > 0)
    return { ...reading, status: "failing", reasons: [...failing, ...warning] };
  if (passed === null) {
    // Read, but no verdict (SMART disabled, a SCSI device without health): say so.
    return {
      ...reading,
      status: "unavailable",
      reasons: messages.length > 0 ? messages : ["smartctl reported no SMART health status"],
    };
  }
  if (warning.length > 0) return { ...reading, status: "warning", reasons: warning };
  return reading;
}

export interface SmartctlRun {
  readonly stdout: string;
  /** The process's exit status; null when it did not exit by itself (timeout, not found). */
  readonly exitStatus: number | null;
  /** Why smartctl could not be run at all (not installed, timed out), else null. */
  readonly failure: string | null;
}

/** Runs `<binary> --json=c -a -n standby /dev/<name>` (no shell), bounded by `timeoutMs`. */
export function runSmartctl(
  binary: string,
  name: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<SmartctlRun> {
  const args = ["--json=c", "-a", "-n", "standby", `/dev/${name}`];
  return new Promise((resolve) => {
    execFile(
      binary,
      args,
      {
        timeout: timeoutMs,
        killSignal: "SIGKILL",
        encoding: "utf8",
        maxBuffer: 4 * 1024 * 1024,
        ...(signal ? { signal } : {}),
      },
      (error, stdout) => {
        if (!error) return resolve({ stdout, exitStatus: 0, failure: null });
        const e = error as NodeJS.ErrnoException & { code?: unknown; killed?: boolean };
        if (e.code === "ENOENT")
          return resolve({ stdout: "", exitStatus: null, failure: `${binary}: not installed` });
        if (signal?.aborted)
          return resolve({ stdout: "", exitStatus: null, failure: "the agent stopped" });
        if (e.killed || typeof e.code !== "number")
          return resolve({
            stdout,
            exitStatus: null,
            failure: e.killed
              ? `${binary} did not answer within ${timeoutMs} ms`
              : `${binary}: ${e.message.split("\n")[0]}`,
          });
        // A non-zero exit is smartctl's bitmask, not a failure to run it.
        resolve({ stdout, exitStatus: e.code, failure: null });
      },
    );
  });
}

/** One device's SMART now: smartctl run and parsed, or unavailable with the reason. */
export async function readSmart(
  binary: string,
  name: string,
  timeoutMs: number,
  now: () => Date = () => new Date(),
  signal?: AbortSignal,
): Promise<TSmart> {
  const run = await runSmartctl(binary, name, timeoutMs, signal);
  if (run.failure !== null) return { ...emptySmart("unavailable", [run.failure]), readAt: now() };
  return parseSmartctl(run.stdout, run.exitStatus, now());
}
