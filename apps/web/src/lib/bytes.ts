const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** Bytes in binary units, as storage tools print them: `512 B`, `256 KiB`, `1.5 GiB`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "—";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // At most two significant decimals below 10, one above; no trailing zeros.
  return `${Number(value.toFixed(value < 10 ? 2 : 1))} ${UNITS[unit]}`;
}

/** A device path's last component (the simulator's leg files); device names stay as they are. */
export function shortDevice(device: string): string {
  return device.includes("/") ? device.slice(device.lastIndexOf("/") + 1) : device;
}
