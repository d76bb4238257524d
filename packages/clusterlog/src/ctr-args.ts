import { EINVAL, ENOENT } from "./errno.ts";
import { CTR_REPLY_CAPACITY } from "./request-types.ts";

// The constructor string the kernel forwards (spec §2.1):
//   "<target length in sectors> clustered-<core|disk> [<log device>] <region_size> [sync|nosync] [block_on_error]"

export type SyncMode = "default" | "nosync" | "sync";
export type LogType = "clustered-core" | "clustered-disk";

/** Largest log we accept: 2^31 regions is a 256 MiB bitmap, far past the 2^21 LVM uses (P18). */
export const MAX_REGION_COUNT = 2 ** 31;

export interface LogConfig {
  /** Target length in 512-byte sectors (the prepended token). */
  readonly deviceSize: bigint;
  readonly logType: LogType;
  /** The log-device argument exactly as received ("M:m" or a path); null for core logs. */
  readonly logDevice: string | null;
  readonly regionSize: number;
  /** ceil(deviceSize / regionSize), as the kernel's dm_sector_div_up (§2.1 step 7). */
  readonly regionCount: number;
  readonly sync: SyncMode;
  readonly blockOnError: boolean;
  /** The argument text without any NUL, used to recognise an identical re-CTR (P4). */
  readonly args: string;
}

export interface ParsedCtr {
  readonly config: LogConfig;
  /**
   * The payload's last counted byte is a NUL: the re-CTR the kernel sends after -ESRCH
   * (data_size = strlen + 1), which has no reply buffer (spec §1.5, pitfall P4 [INF]).
   */
  readonly reCtrForm: boolean;
}

export type CtrParseResult =
  | { readonly ok: true; readonly value: ParsedCtr }
  | { readonly ok: false; readonly errno: number; readonly message: string };

export interface CtrParseOptions {
  /** Reproduce cmirrord's "core log with region size 0 is a disk log named 0" quirk. */
  readonly cmirrordQuirks?: boolean;
}

const DECIMAL = /^[0-9]+$/;

function invalid(message: string): CtrParseResult {
  return { ok: false, errno: -EINVAL, message };
}

function isNonZeroNumber(token: string | undefined): boolean {
  return token !== undefined && DECIMAL.test(token) && BigInt(token) !== 0n;
}

export function parseCtr(data: Uint8Array, options: CtrParseOptions = {}): CtrParseResult {
  if (data.length === 0) return invalid("empty constructor string");
  // Parse by length (pitfall P6): the initial CTR is not NUL-terminated within data_size,
  // the re-CTR is. Anything after a NUL is ignored.
  const nul = data.indexOf(0);
  const textBytes = nul < 0 ? data : data.subarray(0, nul);
  let text = "";
  for (const b of textBytes) text += String.fromCharCode(b);
  const reCtrForm = data[data.length - 1] === 0;
  if (!text.includes(" ")) return invalid("constructor string has no arguments");

  const tokens = text.split(" ");
  if (tokens.some((t) => t.length === 0)) return invalid("empty argument (double space)");
  const [sizeToken, typeToken, ...logArgs] = tokens;

  // [REC] spec §2.1 step 5: decimal only; cmirrord's strtoll(base 0) would read "010" as
  // octal, but the kernel always prints decimal.
  if (!isNonZeroNumber(sizeToken)) return invalid(`bad device size "${sizeToken}"`);
  const deviceSize = BigInt(sizeToken!);
  if (typeToken !== "clustered-disk" && typeToken !== "clustered-core") {
    return invalid(`unknown log type "${typeToken}"`);
  }

  // cmirrord decides disk vs core by whether the first log argument is a non-zero number,
  // so "clustered-core 0" becomes a disk log named "0" that is not found (-ENOENT, §2.1
  // step 4). [REC] decide by the type word instead; the bad region size is then -EINVAL.
  if (options.cmirrordQuirks && typeToken === "clustered-core" && !isNonZeroNumber(logArgs[0])) {
    return { ok: false, errno: -ENOENT, message: `log device "${logArgs[0]}" not found` };
  }
  const isDisk = typeToken === "clustered-disk";
  const [minArgs, maxArgs] = isDisk ? [2, 4] : [1, 3];
  if (logArgs.length < minArgs || logArgs.length > maxArgs) {
    return invalid(`${typeToken} takes ${minArgs}..${maxArgs} arguments, got ${logArgs.length}`);
  }
  const logDevice = isDisk ? logArgs[0]! : null;
  if (logDevice !== null && logDevice.length + 1 > CTR_REPLY_CAPACITY) {
    // The CTR reply echoes it with a NUL into a 128-byte buffer (pitfall P3).
    return invalid("log device name longer than 127 bytes");
  }
  const rest = isDisk ? logArgs.slice(1) : logArgs;
  const regionToken = rest[0];
  if (!isNonZeroNumber(regionToken)) return invalid(`bad region size "${regionToken}"`);
  const regionSizeBig = BigInt(regionToken!);
  // [REC] spec §2.1: the mirror's region hash shifts by ffs(region_size)-1, so a
  // non-power-of-two region size would silently break it.
  if (regionSizeBig > 0x8000_0000n || (regionSizeBig & (regionSizeBig - 1n)) !== 0n) {
    return invalid(`region size ${regionToken} is not a power of two`);
  }
  const regionSize = Number(regionSizeBig);

  let sync: SyncMode = "default";
  let blockOnError = false;
  for (const arg of rest.slice(1)) {
    // Like cmirrord, unknown words are ignored (§2.1 step 6).
    if (arg === "sync") sync = "sync";
    else if (arg === "nosync") sync = "nosync";
    else if (arg === "block_on_error") blockOnError = true;
  }

  const regionCountBig = (deviceSize + regionSizeBig - 1n) / regionSizeBig;
  if (regionCountBig > BigInt(MAX_REGION_COUNT)) {
    return invalid(`${regionCountBig} regions is more than ${MAX_REGION_COUNT}`);
  }
  return {
    ok: true,
    value: {
      config: {
        deviceSize,
        logType: typeToken,
        logDevice,
        regionSize,
        regionCount: Number(regionCountBig),
        sync,
        blockOnError,
        args: text,
      },
      reCtrForm,
    },
  };
}
