// What this host's kernel says about its mirrors (dm-raid1): legs and their health, region
// size, log type and log device, size. Read from `dmsetup table`/`status` on a real host
// (dmsetup-inventory.ts) or from the simulated kernels of the demo cluster
// (simulator/sim-inventory.ts). The resync controller joins it to the cluster-log replica
// by log uuid (resync.logs).

/**
 * dm-raid1's health character per leg (KERNEL-SOURCES.md §3.3, `device_status_char`):
 * A alive (no error counted), F flush failed, D dead (write failure), S sync failure,
 * R read failure, U unclassified. Only `A` is a leg without errors; the error count is
 * cleared only by loading a new table, so a leg never goes back to `A` by itself.
 */
export type LegHealth = "A" | "F" | "D" | "S" | "R" | "U";

export const LEG_HEALTH_CHARS: readonly LegHealth[] = ["A", "F", "D", "S", "R", "U"];

export function legHealth(char: string | undefined): LegHealth {
  // A character a newer kernel may add is not "alive": unclassified.
  return (LEG_HEALTH_CHARS as readonly string[]).includes(char ?? "") ? (char as LegHealth) : "U";
}

export interface MirrorLeg {
  /** The block device's kernel name (`dm-3`, `sdb`), its `M:m` when unresolved, or the simulator's leg file. */
  readonly device: string;
  /** The device-mapper name (`vg0-lv_data_mimage_0`) when the leg is a dm device. */
  readonly label: string | null;
  readonly majorMinor: string | null;
  readonly health: LegHealth;
  /** The table's first leg: dm-raid1's default mirror when the table was loaded. */
  readonly primary: boolean;
  /**
   * The default mirror now: reads go to it and recovery copies from it. dm-raid1 moves it,
   * when it fails, to the first leg without errors (dm-raid1.c fail_mirror), so it is the
   * first `A` leg; none when every leg has failed.
   */
  readonly source: boolean;
  /**
   * Devices it is built on (sysfs `slaves`, recursively, and each partition's disk): a
   * failure of any of them takes the leg too (the blast radius).
   */
  readonly underlying: string[];
}

export interface MirrorLogDevice {
  readonly device: string;
  readonly majorMinor: string | null;
  /** The log server's device health as STATUS_INFO reports it (`A`/`D`); null: unknown. */
  readonly health: "A" | "D" | null;
}

export interface MirrorInfo {
  /** The dm device name (`vg0-lv_data`) or the simulated mirror's name. */
  readonly name: string;
  /** The userspace log's uuid (what the cluster log knows the mirror by); null for a local log. */
  readonly logUuid: string | null;
  /** `clustered-disk`, `clustered-core`, or a local `disk`/`core` log. */
  readonly logType: string;
  readonly regionSectors: number | null;
  /** The mirror target's length in 512-byte sectors. */
  readonly sizeSectors: number;
  readonly legs: MirrorLeg[];
  readonly logDevice: MirrorLogDevice | null;
}

export interface MirrorInventoryResult {
  readonly mirrors: MirrorInfo[];
  /** Why the kernel's mirrors could not be listed (then `mirrors` is empty), else null. */
  readonly reason: string | null;
}

/** Where the resync controller learns about legs. Never throws: failures are a `reason`. */
export interface MirrorInventory {
  list(): Promise<MirrorInventoryResult>;
}

/** Marks `primary` (the first leg) and `source` (the first leg without errors). */
export function withRoles(legs: readonly Omit<MirrorLeg, "primary" | "source">[]): MirrorLeg[] {
  const source = legs.findIndex((l) => l.health === "A");
  return legs.map((leg, i) => ({ ...leg, primary: i === 0, source: i === source }));
}
