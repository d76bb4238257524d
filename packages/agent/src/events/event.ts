import type { TEventKind } from "@mirrorplane/contracts";
import type { TSeverity } from "@mirrorplane/db/enums";

// What the agent reports: `kind` is coarse (the dashboard filters on it; the list and the
// groups the dashboard shows are the contract's); `data.what` says which kernel message or
// condition produced the event.
export type { TEventKind } from "@mirrorplane/contracts";

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
