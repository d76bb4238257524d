import type { TDisk, TSmart } from "@mirrorplane/contracts";
import type { TSeverity } from "@mirrorplane/db/enums";
import type { THostEvent } from "../events/event.ts";

// SMART readings turned into events (issue 13): a drive that starts failing, or whose
// media errors / reallocated, pending or uncorrectable sectors go up, is a `device_failure`
// of that device; a drive that passes again after failing is a `device_recovered`. A device
// SMART cannot read is not an event (a loop device, a VM's disk): the inventory says why.
// Pure: the previous and the new reading of each disk in, events out. Keys carry what was
// observed (the counter's value, the failing reasons), so a restart that reads the same
// values re-derives the same keys and the store keeps one row.

export interface SmartEventContext {
  readonly nodeId: string;
  readonly now: number;
}

const COUNTERS = [
  ["mediaErrors", "media errors", "error"],
  ["reallocatedSectors", "reallocated sectors", "warning"],
  ["pendingSectors", "sectors pending reallocation", "warning"],
  ["uncorrectableSectors", "offline uncorrectable sectors", "error"],
] as const satisfies readonly (readonly [keyof TSmart, string, TSeverity])[];

/** A drive by its serial where SMART or sysfs gives one: device names move between boots. */
export function diskIdentity(disk: Pick<TDisk, "name" | "serial" | "smart">): string {
  return disk.smart.serial ?? disk.serial ?? disk.name;
}

function readable(smart: TSmart | undefined): smart is TSmart {
  return (
    smart !== undefined &&
    (smart.status === "passed" || smart.status === "warning" || smart.status === "failing")
  );
}

export function smartEvents(
  prev: ReadonlyMap<string, TSmart>,
  next: readonly TDisk[],
  ctx: SmartEventContext,
): THostEvent[] {
  const out: THostEvent[] = [];
  for (const disk of next) {
    const smart = disk.smart;
    if (!readable(smart)) continue;
    const id = diskIdentity(disk);
    const before = prev.get(id);
    const was = readable(before) ? before : undefined;
    const what = `${disk.name}${(smart.model ?? disk.model) ? ` (${smart.model ?? disk.model}${id !== disk.name ? `, serial ${id}` : ""})` : ""}`;
    const legs = disk.legs.map((l) => `${l.mirror} leg ${l.index}`);
    const onLegs = legs.length > 0 ? `; mirror legs on it: ${legs.join(", ")}` : "";
    const event = (
      key: string,
      e: Pick<THostEvent, "kind" | "severity" | "message"> & { data: Record<string, unknown> },
    ): THostEvent => ({
      key: `${ctx.nodeId}:smart:${id}:${key}`,
      source: "agent",
      occurredAt: ctx.now,
      device: disk.name,
      count: 1,
      simulated: false,
      ...e,
      ...(disk.legs.length === 1
        ? { mirror: disk.legs[0]!.mirror, leg: disk.legs[0]!.device }
        : {}),
      data: {
        serial: smart.serial ?? disk.serial,
        model: smart.model ?? disk.model,
        exitStatus: smart.exitStatus,
        legs: disk.legs,
        ...e.data,
      },
    });
    if (smart.status === "failing" && was?.status !== "failing") {
      out.push(
        event(`failing:${smart.reasons.join("|")}`, {
          kind: "device_failure",
          severity: "critical",
          message: `SMART: ${what} is FAILING: ${smart.reasons.join("; ")}${onLegs}`,
          data: { what: "smart_failing", reasons: smart.reasons, previous: was?.status ?? null },
        }),
      );
    } else if (smart.status !== "failing" && was?.status === "failing") {
      out.push(
        event(`passes:${ctx.now}`, {
          kind: "device_recovered",
          severity: "notice",
          message: `SMART: ${what} no longer reports failing (${smart.status}${smart.reasons.length ? `: ${smart.reasons.join("; ")}` : ""})`,
          data: { what: "smart_passes", reasons: smart.reasons, previous: "failing" },
        }),
      );
    }
    for (const [field, label, severity] of COUNTERS) {
      const value = smart[field] as number | null;
      const before = (was?.[field] as number | null | undefined) ?? 0;
      // First sight of a non-zero counter is news too (nobody was told); the key is the value.
      if (value === null || value <= before) continue;
      out.push(
        event(`${field}:${value}`, {
          kind: "device_failure",
          severity,
          message: `SMART: ${what}: ${value.toLocaleString("en-US")} ${label} (${was ? `was ${before.toLocaleString("en-US")}` : "first reading"})${onLegs}`,
          data: { what: `smart_${field}`, value, previous: was ? before : null },
        }),
      );
    }
  }
  return out;
}
