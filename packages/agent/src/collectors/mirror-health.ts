import type { TSeverity } from "@mirrorplane/db/enums";
import type { THostEvent } from "../events/event.ts";
import type { LegHealth, MirrorInfo } from "../mirrors/inventory.ts";

// dm-raid1 says nothing in the kernel log when a leg that is not the default mirror fails
// a write (kernel lab, leg-failure): only the leg's health character in `dmsetup status`
// changes (KERNEL-SOURCES.md §3.3). So the agent watches those characters and reports a
// leg that leaves `A` as a device failure of that mirror's leg, beside whatever the
// block layer logged for the device underneath. Pure: two successive inventories in,
// events out; keys from what was observed, so a restart re-derives the keys of what was
// already reported (the store ignores a key it has).

const MEANING: Record<LegHealth, string> = {
  A: "alive",
  F: "failed a flush",
  D: "dead: a write failed",
  S: "failed to sync (the copy onto it failed)",
  R: "failed a read",
  U: "failed (unclassified)",
};

/** D, F, S lose redundancy for what is written next; a read failure is served elsewhere. */
function severityOf(health: LegHealth): TSeverity {
  return health === "R" ? "error" : "critical";
}

export interface MirrorHealthContext {
  readonly nodeId: string;
  readonly bootId: string;
  readonly now: number;
}

const legKey = (leg: { device: string; majorMinor: string | null }) => leg.majorMinor ?? leg.device;

export function mirrorHealthEvents(
  prev: readonly MirrorInfo[] | null,
  next: readonly MirrorInfo[],
  ctx: MirrorHealthContext,
): THostEvent[] {
  const out: THostEvent[] = [];
  for (const mirror of next) {
    // A table reloaded while it was read: its `U`s are not the kernel's verdict on the legs.
    if (!mirror.healthKnown) continue;
    const before = prev?.find((m) => m.name === mirror.name);
    for (const leg of mirror.legs) {
      const was = before?.legs.find((l) => legKey(l) === legKey(leg))?.health;
      if (was === leg.health) continue;
      // First sight (agent start, a new table): only a leg that is already failed is news.
      if (was === undefined && leg.health === "A") continue;
      const recovered = leg.health === "A";
      const what = recovered
        ? `leg ${leg.device} is alive again (${was} → A: a new table was loaded)`
        : `leg ${leg.device} ${MEANING[leg.health]} (dm-raid1 health ${was ?? "?"} → ${leg.health})`;
      out.push({
        key: `${ctx.nodeId}:${ctx.bootId}:mirror-health:${mirror.name}:${legKey(leg)}:${was ?? "new"}>${leg.health}${was === undefined ? "" : `:${ctx.now}`}`,
        kind: recovered ? "device_recovered" : "device_failure",
        severity: recovered ? "notice" : severityOf(leg.health),
        source: "sysfs",
        occurredAt: ctx.now,
        device: leg.device,
        message: `mirror ${mirror.name}: ${what}`,
        count: 1,
        mirror: mirror.name,
        leg: leg.device,
        simulated: false,
        data: {
          what: "mirror_leg_health",
          health: leg.health,
          previous: was ?? null,
          logUuid: mirror.logUuid,
          primary: leg.primary,
          source: leg.source,
          legsAlive: mirror.legs.filter((l) => l.health === "A").length,
          legs: mirror.legs.length,
        },
      });
    }
  }
  return out;
}

/**
 * What the next comparison starts from: `next`, except that a mirror whose health was not
 * read this time keeps what was last known of it (or is not yet seen at all), so a racing
 * reload neither raises a failure nor, on the next read, a recovery.
 */
export function mirrorsSeenAfter(
  prev: readonly MirrorInfo[] | null,
  next: readonly MirrorInfo[],
): MirrorInfo[] {
  return next.flatMap((mirror) => {
    if (mirror.healthKnown) return [mirror];
    const before = prev?.find((m) => m.name === mirror.name);
    return before ? [before] : [];
  });
}
