import type { THostEvent } from "../events/event.ts";
import { type MirrorMap, placeEvent } from "../events/mirror-map.ts";
import { applyMemoryPlacement, type PmemMap } from "../events/pmem-map.ts";
import { PageCoalescer, type PageRun } from "./coalesce.ts";
import { type KernelFinding, parseKernelMessage, resultSeverity } from "./messages.ts";
import { dictDevice, type KmsgRecord, kernelTimeToWall } from "./record.ts";

export interface InterpreterOptions {
  nodeId: string;
  /** `/proc/sys/kernel/random/boot_id`: kernel sequence numbers restart at every boot. */
  bootId: string;
  /** Wall time (epoch ms) of the kernel's timestamp 0. */
  bootWallMs: number;
  /** Per-page reports further apart than this (kernel time) start a new range. */
  coalesceWindowUsec: number;
  mirrors?: MirrorMap | undefined;
  /**
   * pmem namespaces of this host: memory failures on pmem/DAX name the block device, the
   * mirror legs and the regions they hit (DASHBOARD.md edge 4).
   */
  memory?: PmemMap | undefined;
  /** Last sequence already reported (from the saved cursor), to detect lost records. */
  resumeAfterSeq?: number | null | undefined;
}

/** Injected pfns remembered to tag their outcome lines simulated (bounded). */
const maxInjectedPfns = 4096;
const maxRawLine = 2048;
/** Findings about a failed page (its pfn in `data.pfn`) that are placed on pmem devices. */
const placedKinds = new Set(["memory_failure", "memory_failure_lost", "process_killed"]);

/**
 * Turns kernel log records into events: classifies each message, coalesces per-page
 * outcomes into ranges, joins continuation fragments, tags injected failures as
 * simulated, and names mirrors and regions. Pure and deterministic: the same records give
 * the same events with the same idempotency keys, which is what makes a re-read after a
 * restart harmless.
 */
export class KmsgInterpreter {
  private readonly coalescer: PageCoalescer;
  private readonly injected = new Set<number>();
  private fragment: KmsgRecord | null = null;
  private lastSeq: number | null;
  malformed = 0;

  constructor(private readonly options: InterpreterOptions) {
    this.coalescer = new PageCoalescer({ windowUsec: options.coalesceWindowUsec });
    this.lastSeq = options.resumeAfterSeq ?? null;
  }

  /** Accepts one record; returns the events it completes. */
  accept(record: KmsgRecord): THostEvent[] {
    const out: THostEvent[] = [];
    if (this.lastSeq !== null && record.seq <= this.lastSeq) return out;
    if (this.lastSeq !== null && record.seq > this.lastSeq + 1) {
      out.push(this.gapEvent(this.lastSeq + 1, record.seq - 1, record));
    }
    this.lastSeq = record.seq;
    // Continuation fragments (flags `c` then `+`, older kernels): one logical line.
    if (record.flags === "+" && this.fragment !== null) {
      this.fragment = { ...this.fragment, message: this.fragment.message + record.message };
      return out;
    }
    if (this.fragment !== null) {
      this.handle(this.fragment, out);
      this.fragment = null;
    }
    if (record.flags === "c") {
      this.fragment = record;
      return out;
    }
    this.handle(record, out);
    return out;
  }

  /**
   * Nothing more to read for now: completes a pending fragment and closes ranges no page
   * has extended within the window (`nowUsec` is the kernel clock now).
   */
  idle(nowUsec: number): THostEvent[] {
    const out: THostEvent[] = [];
    if (this.fragment !== null) {
      this.handle(this.fragment, out);
      this.fragment = null;
    }
    for (const run of this.coalescer.closeIdle(nowUsec)) out.push(...this.runEvents(run));
    return out;
  }

  /** Closes everything (shutdown). */
  drain(): THostEvent[] {
    const out = this.idle(Number.NEGATIVE_INFINITY);
    for (const run of this.coalescer.drain()) out.push(...this.runEvents(run));
    return out;
  }

  /**
   * The last sequence number whose events have all been handed out: the cursor to save.
   * Records in an open range or a pending fragment are read again after a restart and
   * give the same events (same keys), so nothing is lost and nothing reported twice.
   */
  safeSeq(): number | null {
    let safe = this.lastSeq;
    if (safe === null) return null;
    const open = this.coalescer.oldestOpenSeq();
    if (open !== null) safe = Math.min(safe, open - 1);
    if (this.fragment !== null) safe = Math.min(safe, this.fragment.seq - 1);
    return safe;
  }

  private handle(record: KmsgRecord, out: THostEvent[]): void {
    let found: KernelFinding | null;
    try {
      found = parseKernelMessage(record.message);
    } catch {
      this.malformed++;
      return;
    }
    if (found === null) return;
    if (found.injectedPfn !== undefined) this.rememberInjected(found.injectedPfn);
    if (found.page !== undefined) {
      const simulated = this.injected.has(found.page.pfn);
      const page = found.page;
      for (const run of this.coalescer.push({
        pfn: page.pfn,
        pageType: page.pageType,
        result: page.result,
        simulated,
        seq: record.seq,
        tsUsec: record.tsUsec,
        rawLine: clip(record.message),
      }))
        out.push(...this.runEvents(run));
      return;
    }
    out.push(...this.findingEvents(found, record));
  }

  private rememberInjected(pfn: number): void {
    this.injected.delete(pfn);
    this.injected.add(pfn);
    if (this.injected.size > maxInjectedPfns) {
      const first = this.injected.values().next().value;
      if (first !== undefined) this.injected.delete(first);
    }
  }

  private key(seq: number): string {
    return `${this.options.nodeId}:${this.options.bootId}:kmsg:${seq}`;
  }

  /** One range of pages: one event, or one per mirror leg it hits on pmem. */
  private runEvents(run: PageRun): THostEvent[] {
    const pages =
      run.count === 1
        ? `pfn ${hex(run.firstPfn)}`
        : `${run.count} pages (pfn ${hex(run.firstPfn)}–${hex(run.lastPfn)})`;
    const event: THostEvent = {
      key: this.key(run.firstSeq),
      kind: "memory_failure",
      severity: run.pageType === "already poisoned page" ? "info" : resultSeverity[run.result],
      source: "kmsg",
      occurredAt: kernelTimeToWall(run.firstTsUsec, this.options.bootWallMs),
      device: null,
      message: `memory failure: ${pages}, ${run.pageType}: ${run.result}${run.simulated ? " (simulated)" : ""}`,
      range: { start: String(run.firstPfn), end: String(run.lastPfn), unit: "pfn" },
      count: run.count,
      simulated: run.simulated,
      rawLine: run.rawLine,
      kernelSeq: run.firstSeq,
      kernelTimeUs: run.firstTsUsec,
      data: {
        what: "action_result",
        pageType: run.pageType,
        result: run.result,
        lastSeq: run.lastSeq,
        lastKernelTimeUs: run.lastTsUsec,
        bootId: this.options.bootId,
      },
    };
    const memory = this.options.memory;
    if (!memory) return [event];
    return applyMemoryPlacement(
      event,
      memory.placePfns(run.firstPfn, run.lastPfn, { devicePage: run.pageType === "dax page" }),
    );
  }

  private findingEvents(found: KernelFinding, record: KmsgRecord): THostEvent[] {
    const device = found.device ?? dictDevice(record.dict);
    const event: THostEvent = {
      key: this.key(record.seq),
      kind: found.kind,
      severity: found.severity,
      source: "kmsg",
      occurredAt: kernelTimeToWall(record.tsUsec, this.options.bootWallMs),
      device,
      message: clip(record.message),
      count: 1,
      simulated: found.simulated === true,
      rawLine: clip(record.message),
      kernelSeq: record.seq,
      kernelTimeUs: record.tsUsec,
      data: {
        what: found.what,
        ...found.data,
        facility: record.facility,
        level: record.level,
        bootId: this.options.bootId,
      },
    };
    if (found.range)
      event.range = {
        start: String(found.range.start),
        end: String(found.range.end),
        unit: found.range.unit,
      };
    if (found.simulated === undefined && typeof found.data.pfn === "number")
      event.simulated = this.injected.has(found.data.pfn);
    const memory = this.options.memory;
    if (memory && found.kind === "memory_device_loss" && device !== null) {
      // A whole memory device: every leg on it, its partitions, or (a namespace or region
      // name) the block devices it carries, each affected whole.
      const { devices, locations } = memory.locateDevice(device);
      event.data.devices = devices;
      return placeEvent(
        event,
        locations.map((l) => ({
          device,
          location: { mirror: l.mirror, leg: l.leg, regions: l.regions },
        })),
      );
    }
    const where = this.options.mirrors?.locate(found.leg ?? device, found.range);
    if (where) {
      event.mirror = where.mirror;
      event.leg = where.leg;
      if (where.regions) event.regions = where.regions;
    }
    const pfn = found.data.pfn;
    if (
      memory &&
      placedKinds.has(found.kind) &&
      found.what !== "injected" &&
      typeof pfn === "number" &&
      Number.isSafeInteger(pfn) &&
      pfn >= 0
    ) {
      // No struct page (a raw or BTT namespace, KERNEL-SOURCES §1.1): device memory too.
      const outside =
        found.what === "detail" && found.data.detail === "memory outside kernel control";
      const placement = memory.placePfns(pfn, pfn, { devicePage: outside });
      if (placement !== null) {
        event.range = { start: String(pfn), end: String(pfn), unit: "pfn" };
        return applyMemoryPlacement(event, placement);
      }
    }
    return [event];
  }

  private gapEvent(from: number, to: number, record: KmsgRecord): THostEvent {
    return {
      key: `${this.key(from)}:gap`,
      kind: "agent",
      severity: "warning",
      source: "agent",
      occurredAt: kernelTimeToWall(record.tsUsec, this.options.bootWallMs),
      device: null,
      message: `kernel log records ${from}–${to} were overwritten before the agent read them (${to - from + 1} lost)`,
      count: to - from + 1,
      simulated: false,
      kernelSeq: from,
      data: { what: "kmsg_gap", firstLostSeq: from, lastLostSeq: to, bootId: this.options.bootId },
    };
  }
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function clip(text: string): string {
  return text.length > maxRawLine ? `${text.slice(0, maxRawLine)}…` : text;
}
