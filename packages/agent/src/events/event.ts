import type { TSeverity } from "@mirrorplane/db/enums";

/**
 * What the agent reports. `kind` is coarse (the dashboard filters on it); `data.what`
 * says which kernel message or condition produced the event.
 */
export const eventKinds = [
  /** Poisoned pages: action_result lines (coalesced into pfn ranges) and their details. */
  "memory_failure",
  /** The kernel dropped memory-failure reports (its per-CPU queue overflowed). */
  "memory_failure_lost",
  /** A process was signalled or killed because of corrupted memory. */
  "process_killed",
  "soft_offline",
  "unpoison",
  /** A whole memory device (pmem/DAX) went away or is about to: one range, never pages. */
  "memory_device_loss",
  /** Known-bad media ranges of a pmem device or region. */
  "pmem_badblocks",
  /** EDAC corrected/uncorrected error counts went up. */
  "edac_error",
  /** Poisoned-page counters (per-node memory_failure/, HardwareCorrupted) went up. */
  "hwpoison_counter",
  /** NVMe, block-layer, dm-raid1 and device-state failures. */
  "device_failure",
  /** A device came back (state `live`/`running` after a failure state). */
  "device_recovered",
  /** A khugepaged/THP tunable was changed (or a change was refused) through the API. */
  "tunable_change",
  /** The agent's own conditions: spool full, kernel log records lost, source problems. */
  "agent",
  /** Operator resyncs of a mirror: start, progress samples, throttle, done, failed, cancelled. */
  "resync",
] as const;
export type TEventKind = (typeof eventKinds)[number];

export type TRangeUnit = "pfn" | "sector" | "lba" | "byte";

/**
 * One event as the agent produces, spools and stores it. JSON-safe (the spool is JSON
 * lines): u64 range bounds travel as decimal strings, times as epoch milliseconds.
 */
export interface THostEvent {
  /** Stable idempotency key: the same report always yields the same key. */
  key: string;
  kind: TEventKind;
  severity: TSeverity;
  source: "kmsg" | "sysfs" | "procfs" | "agent" | "api";
  /** Wall time (epoch ms); kernel-log events convert the kernel's timestamp. */
  occurredAt: number;
  device: string | null;
  message: string;
  range?: { start: string; end: string; unit: TRangeUnit } | undefined;
  /** Kernel reports this event stands for (pages coalesced into the range). */
  count: number;
  mirror?: string | undefined;
  leg?: string | undefined;
  regions?: { start: number; end: number } | undefined;
  simulated: boolean;
  rawLine?: string | undefined;
  kernelSeq?: number | undefined;
  kernelTimeUs?: number | undefined;
  data: Record<string, unknown>;
}

/** Structural check for records read back from the spool (a torn or edited file). */
export function isHostEvent(value: unknown): value is THostEvent {
  if (typeof value !== "object" || value === null) return false;
  const e = value as Record<string, unknown>;
  return (
    typeof e.key === "string" &&
    e.key.length > 0 &&
    typeof e.kind === "string" &&
    typeof e.severity === "string" &&
    typeof e.source === "string" &&
    typeof e.occurredAt === "number" &&
    Number.isFinite(e.occurredAt) &&
    typeof e.message === "string" &&
    typeof e.count === "number" &&
    typeof e.simulated === "boolean" &&
    typeof e.data === "object" &&
    e.data !== null
  );
}

export const severityRank: Record<TSeverity, number> = {
  debug: 0,
  info: 1,
  notice: 2,
  warning: 3,
  error: 4,
  critical: 5,
};
