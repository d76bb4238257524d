import type { TSeverity } from "@mirrorplane/db/enums";
import type { THostEvent } from "../events/event.ts";
import { type MirrorLocation, type MirrorMap, placeEvent } from "../events/mirror-map.ts";
import { type DeviceState, deviceHealth } from "./devices.ts";
import type { MemorySnapshot } from "./memory.ts";
import type { DiskPartition } from "./pmem-layout.ts";

export interface HostState {
  memory: MemorySnapshot;
  devices: DeviceState[];
}

export interface DiffContext {
  nodeId: string;
  bootId: string;
  now: number;
  mirrors?: MirrorMap | undefined;
}

/**
 * Events from two successive polls of sysfs/procfs (`prev` null: the first poll after
 * start). Pure. Keys are derived from what was observed (boot, counter value, bad range),
 * so the first poll after a restart re-derives the keys of what was already reported and
 * nothing is stored twice.
 */
export function hostEvents(
  prev: HostState | null,
  next: HostState,
  ctx: DiffContext,
): THostEvent[] {
  const out: THostEvent[] = [];
  const base = (
    key: string,
    e: Omit<THostEvent, "key" | "occurredAt" | "count" | "simulated" | "source"> &
      Partial<THostEvent>,
  ): THostEvent => ({
    key: `${ctx.nodeId}:${key}`,
    occurredAt: ctx.now,
    count: 1,
    simulated: false,
    source: "sysfs",
    ...e,
  });

  // Per-node memory_failure counters (§1.4): monotonic since boot.
  for (const n of next.memory.nodes) {
    const before = prev?.memory.nodes.find((p) => p.node === n.node);
    const total = n.total ?? 0;
    const was = before ? (before.total ?? 0) : 0;
    if (total <= was) continue;
    const grew = (k: "ignored" | "failed" | "delayed" | "recovered") =>
      (n[k] ?? 0) > (before?.[k] ?? 0);
    const severity: TSeverity = grew("ignored") ? "critical" : grew("failed") ? "error" : "warning";
    out.push(
      base(`${ctx.bootId}:memory_failure:${n.node}:${total}`, {
        kind: "hwpoison_counter",
        severity,
        device: n.node,
        message: `${n.node}: ${total - was} more poisoned page(s) (${total} since boot: ${n.ignored ?? "?"} ignored, ${n.failed ?? "?"} failed, ${n.delayed ?? "?"} delayed, ${n.recovered ?? "?"} recovered)`,
        count: total - was,
        data: { what: "node_counters", ...n, previousTotal: was, bootId: ctx.bootId },
      }),
    );
  }

  // HardwareCorrupted (§1.3): includes soft-offlined pages; shrinks on unpoison.
  const hc = next.memory.hardwareCorruptedBytes;
  const hcWas = prev?.memory.hardwareCorruptedBytes ?? 0;
  if (hc !== null && hc > hcWas) {
    out.push(
      base(`${ctx.bootId}:hardware_corrupted:${hc}`, {
        kind: "hwpoison_counter",
        severity: "warning",
        device: null,
        message: `HardwareCorrupted grew to ${hc / 1024} kB (+${(hc - hcWas) / 1024} kB)`,
        data: { what: "hardware_corrupted", bytes: hc, previousBytes: hcWas, bootId: ctx.bootId },
      }),
    );
  }

  // EDAC (§1.6): both layouts. A counter that went down was reset: new baseline.
  for (const mc of next.memory.edac ?? []) {
    const prevMc = prev?.memory.edac?.find((p) => p.mc === mc.mc);
    for (const loc of mc.locations) {
      const prevLoc = prevMc?.locations.find((l) => l.id === loc.id);
      for (const [type, value, was] of [
        ["ue", loc.ueCount, prevLoc?.ueCount ?? 0],
        ["ce", loc.ceCount, prevLoc?.ceCount ?? 0],
      ] as const) {
        if (value === null || value <= (was ?? 0)) continue;
        const delta = value - (was ?? 0);
        const where = loc.label ?? `${mc.mc}/${loc.id}`;
        out.push(
          base(`${ctx.bootId}:edac:${mc.mc}:${loc.id}:${type}:${value}`, {
            kind: "edac_error",
            severity: type === "ue" ? "critical" : "warning",
            device: where,
            message: `${delta} ${type === "ue" ? "uncorrected" : "corrected"} memory error(s) on ${where}${loc.location ? ` (${loc.location})` : ""} [${mc.mc}${mc.name ? ` ${mc.name}` : ""}, ${loc.layout}]: ${value} total`,
            count: delta,
            data: {
              what: `edac_${type}`,
              mc: mc.mc,
              controller: mc.name,
              location: loc,
              total: value,
              previous: was,
            },
          }),
        );
      }
    }
  }

  // pmem/nd bad blocks (§1.7): media ranges persist across boots, so the key has no boot.
  for (const dev of next.memory.pmem) {
    const before = prev?.memory.pmem.find((p) => p.device === dev.device);
    for (const r of dev.badblocks) {
      if (before?.badblocks.some((b) => b.startSector === r.startSector && b.sectors === r.sectors))
        continue;
      const range = {
        start: BigInt(r.startSector),
        end: BigInt(r.startSector + r.sectors - 1),
        unit: "sector" as const,
      };
      // Legs on the disk or on its partitions; a leg's device outside its data still names it.
      const onDisk =
        dev.type === "pmem"
          ? (ctx.mirrors?.locateOnDisk(dev.device, range, { partitions: dev.partitions }) ?? [])
          : [];
      const where = onDisk[0] ?? ctx.mirrors?.locate(dev.device, range);
      const event = base(`pmem:${dev.device}:${r.startSector}:${r.sectors}`, {
        kind: "pmem_badblocks",
        severity: "error",
        device: dev.device,
        message: `${dev.device}: ${r.sectors} bad sector(s) at ${r.startSector}${dev.badblocksTruncated ? " (list truncated at one page: there may be more)" : ""}`,
        range: { start: String(range.start), end: String(range.end), unit: "sector" },
        count: r.sectors,
        mirror: where?.mirror,
        leg: where?.leg,
        regions: where?.regions,
        data: { what: "badblocks", type: dev.type, truncated: dev.badblocksTruncated },
      });
      out.push(...placeEvent(event, onDisk.length > 1 ? onDisk.map(located) : []));
    }
  }

  // A pmem/DAX device that disappears: ONE range event for the whole device (PB6).
  if (prev !== null) {
    const present = new Set([
      ...next.memory.pmem.map((d) => d.device),
      ...next.memory.dax.map((d) => d.device),
    ]);
    const gone: LostDevice[] = [
      ...prev.memory.pmem.map((d) => ({
        device: d.device,
        sizeBytes: d.sizeBytes,
        type: d.type as string,
        partitions: d.partitions,
      })),
      ...prev.memory.dax.map((d) => ({ device: d.device, sizeBytes: d.sizeBytes, type: "dax" })),
    ].filter((d) => !present.has(d.device));
    const goneNames = new Set(gone.map((d) => d.device));
    for (const d of gone) {
      if (d.type === "region") {
        // The region's block devices (named pmem<region>[.<ns>][s]): each one that vanished
        // too has its own event naming its legs; the region names the legs of the others.
        const disks = prev.memory.pmem.filter(
          (p) => p.type === "pmem" && regionOfDisk(p.device) === d.device,
        );
        d.blockDevices = disks.map((p) => p.device);
        d.disks = disks.filter((p) => !goneNames.has(p.device));
      }
      out.push(...deviceLossEvents(ctx, d));
    }
  }

  // Device state files (§3.2): transitions, and failures already present at start.
  for (const d of next.devices) {
    const before = prev?.devices.find((p) => p.device === d.device);
    const health = deviceHealth(d.type, d.state);
    if (before === undefined) {
      if (health === "ok") continue;
      out.push(
        base(
          `${ctx.bootId}:state:${d.device}:${d.state}:initial`,
          stateEvent(d, health, null, ctx),
        ),
      );
      continue;
    }
    if (before.state === d.state) continue;
    const wasHealth = deviceHealth(before.type, before.state);
    if (health === "ok" && wasHealth === "ok") continue;
    out.push(
      base(
        `${ctx.bootId}:state:${d.device}:${before.state}>${d.state}:${ctx.now}`,
        stateEvent(d, health, before.state, ctx),
      ),
    );
  }
  if (prev !== null) {
    for (const d of prev.devices) {
      if (next.devices.some((n) => n.device === d.device)) continue;
      const where = ctx.mirrors?.locate(d.device);
      out.push(
        base(`${ctx.bootId}:state:${d.device}:removed:${ctx.now}`, {
          kind: "device_failure",
          severity: "critical",
          device: d.device,
          message: `${d.device} disappeared (last state ${d.state})`,
          mirror: where?.mirror,
          leg: where?.leg,
          regions: where?.regions,
          data: { what: "device_removed", type: d.type, lastState: d.state },
        }),
      );
    }
  }
  return out;
}

function stateEvent(
  d: DeviceState,
  health: ReturnType<typeof deviceHealth>,
  previous: string | null,
  ctx: DiffContext,
) {
  const where = ctx.mirrors?.locate(d.device);
  return {
    kind: health === "ok" ? ("device_recovered" as const) : ("device_failure" as const),
    severity: (health === "ok"
      ? "notice"
      : health === "transient"
        ? "warning"
        : "critical") as TSeverity,
    device: d.device,
    message:
      previous === null ? `${d.device} is ${d.state}` : `${d.device}: ${previous} → ${d.state}`,
    mirror: where?.mirror,
    leg: where?.leg,
    regions: where?.regions,
    data: { what: "device_state", type: d.type, state: d.state, previous },
  };
}

/** `pmem0`, `pmem0.1`, `pmem0s` → `region0` (nvdimm_namespace_disk_name). */
export function regionOfDisk(disk: string): string | null {
  const m = /^pmem(\d+)/.exec(disk);
  return m ? `region${m[1]}` : null;
}

export interface LostDevice {
  device: string;
  sizeBytes: number | null;
  type: string;
  /** A pmem disk's partitions (legs may be on them). */
  partitions?: DiskPartition[] | undefined;
  /** A region: the block devices it carried. */
  blockDevices?: string[] | undefined;
  /** A region: its disks whose legs this event names (those without an event of their own). */
  disks?: Array<{ device: string; sizeBytes: number | null; partitions: DiskPartition[] }>;
}

function located(l: MirrorLocation & { device: string }) {
  return { device: null, location: { mirror: l.mirror, leg: l.leg, regions: l.regions } };
}

/**
 * A whole memory device is gone: one event (one per mirror leg on it, each leg affected
 * whole: on the disk, on its partitions, or for a region on the disks it carried).
 */
export function deviceLossEvents(ctx: DiffContext, d: LostDevice): THostEvent[] {
  const event = deviceLossEvent(ctx, d);
  const mirrors = ctx.mirrors;
  if (!mirrors) return [event];
  const disks =
    d.type === "pmem"
      ? [{ device: d.device, sizeBytes: d.sizeBytes, partitions: d.partitions ?? [] }]
      : (d.disks ?? []);
  const locations =
    d.type === "pmem" || d.type === "region"
      ? disks.flatMap((disk) =>
          mirrors.locateOnDisk(disk.device, null, {
            diskSectors: disk.sizeBytes === null ? null : Math.floor(disk.sizeBytes / 512),
            partitions: disk.partitions,
          }),
        )
      : mirrors.locateAll(d.device).map((l) => ({ ...l, device: d.device }));
  if (d.blockDevices) event.data.blockDevices = d.blockDevices;
  if (locations.length === 0) return [event];
  delete event.mirror;
  delete event.leg;
  delete event.regions;
  return placeEvent(event, locations.map(located));
}

/**
 * One event for a whole memory device (pmem namespace, nd region, DAX instance), whatever
 * its size: a 6 TiB device is 1.6 billion pages and still one row (KERNEL-SOURCES §1.8).
 * Names the first leg found on the device; `deviceLossEvents` names every one.
 */
export function deviceLossEvent(
  ctx: DiffContext,
  d: { device: string; sizeBytes: number | null; type: string },
): THostEvent {
  const end =
    d.sizeBytes !== null && d.sizeBytes > 0
      ? String(BigInt(d.sizeBytes) - 1n)
      : "18446744073709551615";
  const where = ctx.mirrors?.locate(d.device, { start: 0n, end: BigInt(end), unit: "byte" });
  return {
    key: `${ctx.nodeId}:${ctx.bootId}:loss:${d.device}:${ctx.now}`,
    kind: "memory_device_loss",
    severity: "critical",
    source: "sysfs",
    occurredAt: ctx.now,
    device: d.device,
    message: `${d.type} device ${d.device} disappeared${d.sizeBytes ? ` (${d.sizeBytes} bytes, ${Math.ceil(d.sizeBytes / 4096)} pages)` : ""}`,
    range: { start: "0", end, unit: "byte" },
    count: d.sizeBytes ? Math.ceil(d.sizeBytes / 4096) : 1,
    simulated: false,
    mirror: where?.mirror,
    leg: where?.leg,
    regions: where?.regions,
    data: { what: "device_gone", type: d.type, sizeBytes: d.sizeBytes },
  };
}
