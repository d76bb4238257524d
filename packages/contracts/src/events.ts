import { z } from "zod";

/**
 * What an agent reports. `kind` is coarse (the dashboard filters and groups on it);
 * `data.what` says which kernel message or condition produced the event.
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
export const ZEventKind = z.enum(eventKinds);
export type TEventKind = z.infer<typeof ZEventKind>;

// The groups the dashboard shows. Errors are what went wrong (the time axis counts them,
// DASHBOARD.md edge 10: "memory errors", "NVMe errors"); events are everything about the
// layer, recoveries included (the memory & devices page lists them). Until these were one
// list each, the two pages kept their own copies, and they differed by `unpoison`.

/** Memory errors: a page or device lost, known-bad media, error counters going up. */
export const memoryErrorKinds = [
  "memory_failure",
  "memory_device_loss",
  "pmem_badblocks",
  "edac_error",
  "hwpoison_counter",
  "soft_offline",
] as const satisfies readonly TEventKind[];

/** Every memory event: the errors and `unpoison` (a page given back: not an error). */
export const memoryEventKinds = [
  ...memoryErrorKinds,
  "unpoison",
] as const satisfies readonly TEventKind[];

/** Device errors: NVMe, block-layer, dm-raid1 and device-state failures. */
export const deviceErrorKinds = ["device_failure"] as const satisfies readonly TEventKind[];

/** Every device event: failures and recoveries. */
export const deviceEventKinds = [
  ...deviceErrorKinds,
  "device_recovered",
] as const satisfies readonly TEventKind[];
