// What this host's kernel says about its mirrors (dm-raid1): legs and their health, region
// size, log type and log device, size. Read from `dmsetup table`/`status` on a real host
// (dmsetup-inventory.ts) or from the simulated kernels of the demo cluster
// (packages/simulator, simulated-inventory.ts). The resync controller joins it to the
// cluster-log replica by log uuid (resync.logs).

import {
  legHealthChars,
  type TLegHealth,
  type TMirrorLeg,
  type TMirrorLogDevice,
} from "@mirrorplane/contracts";

/** dm-raid1's health character per leg: the contract's (`legHealthChars` says what each means). */
export type LegHealth = TLegHealth;

export const LEG_HEALTH_CHARS: readonly LegHealth[] = legHealthChars;

export function legHealth(char: string | undefined): LegHealth {
  // A character a newer kernel may add is not "alive": unclassified.
  return (LEG_HEALTH_CHARS as readonly string[]).includes(char ?? "") ? (char as LegHealth) : "U";
}

/** One leg as the agent API reports it (the contract's `ZMirrorLeg`). */
export type MirrorLeg = TMirrorLeg;

export type MirrorLogDevice = TMirrorLogDevice;

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
  /**
   * False when no status of this table load was read (the table was reloaded between
   * `dmsetup table` and `dmsetup status`): the legs then read `U`, which says nothing about
   * the devices, so nothing is concluded from them (mirror-health.ts).
   */
  readonly healthKnown: boolean;
  /** The target line `dmsetup table` printed (after the name); absent for simulated kernels. */
  readonly table?: string | null;
  /** The dm device's uuid from sysfs (`LVM-…` for LVM), when found. */
  readonly dmUuid?: string | null;
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
