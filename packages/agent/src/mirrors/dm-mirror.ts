import { type LegHealth, legHealth } from "./inventory.ts";

// Parsers for `dmsetup table --target mirror` and `dmsetup status --target mirror` (every
// device, so each line starts with `<dm name>: `). Formats from dm-raid1.c mirror_status
// and dm-log-userspace-base.c userspace_status (KERNEL-SOURCES.md §3.3):
//
//   table:  <start> <len> mirror <log type> <#log args> <log args…> <#legs> (<dev> <offset>)…
//           [<#features> <feature>…]
//     userspace log args: <uuid> [integrated_flush] clustered-disk <log dev> <region size>
//                         [sync|nosync] [block_on_error]   (or clustered-core <region size> …)
//     #log args counts the uuid and integrated_flush too (usr_argc is set before they are
//     taken off); core: <region size> [sync|nosync]; disk: <log dev> <region size> […]
//   status: <start> <len> mirror <#legs> <dev>… <in sync>/<regions> 1 <health char per leg>
//           <log status>
//     log status: <#args> <args…>, e.g. `3 clustered-disk 253:2 A`, `1 clustered-core`,
//     `3 disk 253:2 A`, `1 core`; `userspace 1 COM_FAILURE` when the log server did not answer.
//
// `parseMirrorTables` in clusterlog/dmsetup.ts reads only the log uuid for suspend/resume;
// this reads the whole line.

export interface MirrorTableLine {
  readonly name: string;
  readonly start: number;
  readonly sizeSectors: number;
  /** `clustered-disk`, `clustered-core` (userspace logs), `disk` or `core`. */
  readonly logType: string;
  readonly logUuid: string | null;
  readonly logDevice: string | null;
  readonly regionSectors: number | null;
  readonly integratedFlush: boolean;
  readonly legs: readonly { readonly device: string; readonly offset: number }[];
  readonly features: readonly string[];
  /** The line as dmsetup printed it after `<name>: ` (what `dmsetup reload --table` takes). */
  readonly text: string;
}

export interface MirrorStatusLine {
  readonly name: string;
  readonly start: number;
  readonly sizeSectors: number;
  readonly legs: readonly { readonly device: string; readonly health: LegHealth }[];
  readonly inSync: number;
  readonly regionCount: number;
  readonly logType: string | null;
  readonly logDevice: string | null;
  readonly logHealth: "A" | "D" | null;
  /** The log server did not answer STATUS_INFO (`COM_FAILURE`). */
  readonly logUnreachable: boolean;
}

const INTEGER = /^\d+$/;

function int(token: string | undefined): number | null {
  if (token === undefined || !INTEGER.test(token)) return null;
  const n = Number(token);
  return Number.isSafeInteger(n) ? n : null;
}

/** `name: <start> <len> mirror …` → [name, fields]; null for any other line. */
function mirrorLine(line: string): { name: string; fields: string[]; text: string } | null {
  const colon = line.indexOf(": ");
  if (colon <= 0) return null;
  const fields = line
    .slice(colon + 2)
    .trim()
    .split(/\s+/);
  if (fields[2] !== "mirror" || int(fields[0]) === null || int(fields[1]) === null) return null;
  return { name: line.slice(0, colon), fields, text: fields.join(" ") };
}

/** The log part of a table line: type, uuid, device and region size. */
function tableLog(
  type: string,
  args: readonly string[],
): Pick<
  MirrorTableLine,
  "logType" | "logUuid" | "logDevice" | "regionSectors" | "integratedFlush"
> | null {
  if (type === "userspace") {
    let i = 1;
    const integratedFlush = args[i]?.toLowerCase() === "integrated_flush";
    if (integratedFlush) i++;
    const kind = args[i];
    if (!args[0] || (kind !== "clustered-disk" && kind !== "clustered-core")) return null;
    const disk = kind === "clustered-disk";
    return {
      logType: kind,
      logUuid: args[0],
      logDevice: disk ? (args[i + 1] ?? null) : null,
      regionSectors: int(args[disk ? i + 2 : i + 1]),
      integratedFlush,
    };
  }
  if (type === "core" || type === "disk") {
    const disk = type === "disk";
    return {
      logType: type,
      logUuid: null,
      logDevice: disk ? (args[0] ?? null) : null,
      regionSectors: int(args[disk ? 1 : 0]),
      integratedFlush: false,
    };
  }
  return null;
}

/** Every mirror target in `dmsetup table --target mirror` output; malformed lines are skipped. */
export function parseMirrorTable(output: string): MirrorTableLine[] {
  const found: MirrorTableLine[] = [];
  for (const line of output.split("\n")) {
    const parsed = mirrorLine(line);
    if (!parsed) continue;
    const f = parsed.fields;
    const argc = int(f[4]);
    if (argc === null) continue;
    const logArgs = f.slice(5, 5 + argc);
    const log = tableLog(f[3]!, logArgs);
    const legCount = int(f[5 + argc]);
    if (!log || logArgs.length !== argc || legCount === null || legCount < 1) continue;
    const legs: { device: string; offset: number }[] = [];
    let at = 6 + argc;
    for (let n = 0; n < legCount; n++, at += 2) {
      const offset = int(f[at + 1]);
      if (!f[at] || offset === null) break;
      legs.push({ device: f[at]!, offset });
    }
    if (legs.length !== legCount) continue;
    const featureCount = int(f[at]) ?? 0;
    found.push({
      name: parsed.name,
      start: int(f[0])!,
      sizeSectors: int(f[1])!,
      ...log,
      legs,
      features: f.slice(at + 1, at + 1 + featureCount),
      text: parsed.text,
    });
  }
  return found;
}

/** Every mirror target in `dmsetup status --target mirror` output; malformed lines are skipped. */
export function parseMirrorStatus(output: string): MirrorStatusLine[] {
  const found: MirrorStatusLine[] = [];
  for (const line of output.split("\n")) {
    const parsed = mirrorLine(line);
    if (!parsed) continue;
    const f = parsed.fields;
    const legCount = int(f[3]);
    if (legCount === null || legCount < 1) continue;
    const devices = f.slice(4, 4 + legCount);
    const ratio = /^(\d+)\/(\d+)$/.exec(f[4 + legCount] ?? "");
    if (devices.length !== legCount || !ratio) continue;
    let at = 5 + legCount;
    // `1 <health chars>` since Linux 2.6.24; without it every leg is unclassified.
    let healthChars = "";
    if (f[at] === "1" && f[at + 1] !== undefined && f[at + 1]!.length === legCount) {
      healthChars = f[at + 1]!;
      at += 2;
    }
    const log = f.slice(at);
    let logType: string | null = null;
    let logDevice: string | null = null;
    let logHealth: "A" | "D" | null = null;
    let logUnreachable = false;
    const logArgc = int(log[0]);
    if (logArgc !== null) {
      const args = log.slice(1, 1 + logArgc);
      logType = args[0] ?? null;
      if (logType === "clustered-disk" || logType === "disk") {
        logDevice = args[1] ?? null;
        logHealth = args[2] === "D" ? "D" : args[2] === "A" ? "A" : null;
      }
    } else if (log[0] === "userspace" && log.includes("COM_FAILURE")) {
      logType = "userspace";
      logUnreachable = true;
    }
    found.push({
      name: parsed.name,
      start: int(f[0])!,
      sizeSectors: int(f[1])!,
      legs: devices.map((device, i) => ({ device, health: legHealth(healthChars[i]) })),
      inSync: Number(ratio[1]),
      regionCount: Number(ratio[2]),
      logType,
      logDevice,
      logHealth,
      logUnreachable,
    });
  }
  return found;
}
