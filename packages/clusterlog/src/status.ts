import type { LogConfig } from "./ctr-args.ts";

// Daemon status strings, byte-exact with cmirrord (spec §2.15, §2.16, §6.3). Both are sent
// with data_size = strlen: no NUL is counted.

/** STATUS_INFO: `1 clustered-core` or `3 clustered-disk <M:m> <A|D>` (server's health). */
export function statusInfo(config: LogConfig, logDevFailed: boolean): string {
  if (config.logType === "clustered-core") return "1 clustered-core";
  return `3 clustered-disk ${config.logDevice} ${logDevFailed ? "D" : "A"}`;
}

/**
 * STATUS_TABLE: `clustered-core <region_size> <S><B> ` / `clustered-disk <M:m> <region_size>
 * <S><B> ` where S is "", "nosync " or "sync " and B is "" or "block_on_error"; the
 * trailing space is always there, so the default case ends in two spaces.
 */
export function statusTable(config: LogConfig): string {
  const s = config.sync === "default" ? "" : `${config.sync} `;
  const b = config.blockOnError ? "block_on_error" : "";
  const device = config.logType === "clustered-disk" ? ` ${config.logDevice}` : "";
  return `${config.logType}${device} ${config.regionSize} ${s}${b} `;
}
