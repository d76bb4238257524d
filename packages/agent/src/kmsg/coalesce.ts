import type { TMfResult } from "./messages.ts";

/** One per-page outcome line (`recovery action for <type>: <result>`). */
export interface PageReport {
  pfn: number;
  pageType: string;
  result: TMfResult;
  simulated: boolean;
  seq: number;
  tsUsec: number;
  rawLine: string;
}

/** Consecutive pages of one page type, outcome and origin: one row, never one per page. */
export interface PageRun {
  firstPfn: number;
  lastPfn: number;
  /** Pages reported (equals lastPfn − firstPfn + 1: only adjacent pages extend a run). */
  count: number;
  pageType: string;
  result: TMfResult;
  simulated: boolean;
  firstSeq: number;
  lastSeq: number;
  firstTsUsec: number;
  lastTsUsec: number;
  rawLine: string;
}

export interface CoalescerOptions {
  /** A page extends a run only if it follows the run's last page within this time. */
  windowUsec: number;
  /** Open runs kept at once (interleaved storms from several CPUs); the oldest closes first. */
  maxOpenRuns?: number;
}

/**
 * Coalesces per-pfn memory-failure reports into ranges (KERNEL-SOURCES.md §1.8 "Agent
 * design implication": the kernel may report a failed device as one action_result line per
 * pfn — 1.6 billion for 6 TB). Pure: time is the kernel's timestamp, passed in.
 */
export class PageCoalescer {
  private readonly open = new Map<string, PageRun>();
  private readonly maxOpenRuns: number;

  constructor(private readonly options: CoalescerOptions) {
    this.maxOpenRuns = options.maxOpenRuns ?? 64;
  }

  private last: PageRun | null = null;

  /** Adds one report; returns the runs it closed (usually none). */
  push(report: PageReport): PageRun[] {
    // Hot path: the next page of the run the previous report extended.
    const last = this.last;
    if (
      last !== null &&
      report.pfn === last.lastPfn + 1 &&
      report.result === last.result &&
      report.pageType === last.pageType &&
      report.simulated === last.simulated &&
      report.tsUsec - last.lastTsUsec <= this.options.windowUsec
    ) {
      last.lastPfn = report.pfn;
      last.count++;
      last.lastSeq = report.seq;
      last.lastTsUsec = report.tsUsec;
      return [];
    }
    return this.pushSlow(report);
  }

  private pushSlow(report: PageReport): PageRun[] {
    const key = runKey(report.pageType, report.result, report.simulated);
    const run = this.open.get(key);
    if (
      run !== undefined &&
      report.pfn === run.lastPfn + 1 &&
      report.tsUsec - run.lastTsUsec <= this.options.windowUsec
    ) {
      run.lastPfn = report.pfn;
      run.count++;
      run.lastSeq = report.seq;
      run.lastTsUsec = report.tsUsec;
      this.last = run;
      return [];
    }
    const closed: PageRun[] = [];
    if (run !== undefined) {
      this.open.delete(key);
      closed.push(run);
    }
    if (this.open.size >= this.maxOpenRuns) closed.push(...this.closeOldest());
    const created: PageRun = {
      firstPfn: report.pfn,
      lastPfn: report.pfn,
      count: 1,
      pageType: report.pageType,
      result: report.result,
      simulated: report.simulated,
      firstSeq: report.seq,
      lastSeq: report.seq,
      firstTsUsec: report.tsUsec,
      lastTsUsec: report.tsUsec,
      rawLine: report.rawLine,
    };
    this.open.set(key, created);
    this.last = created;
    return closed;
  }

  /** Closes the runs no report has extended for a window (kernel time `nowUsec`). */
  closeIdle(nowUsec: number): PageRun[] {
    const closed: PageRun[] = [];
    for (const [key, run] of this.open) {
      if (nowUsec - run.lastTsUsec > this.options.windowUsec) {
        this.open.delete(key);
        if (this.last === run) this.last = null;
        closed.push(run);
      }
    }
    return closed.sort((a, b) => a.firstSeq - b.firstSeq);
  }

  /** Closes every open run (shutdown). */
  drain(): PageRun[] {
    const closed = [...this.open.values()].sort((a, b) => a.firstSeq - b.firstSeq);
    this.open.clear();
    this.last = null;
    return closed;
  }

  /** The first sequence number still held in an open run (the resume point), if any. */
  oldestOpenSeq(): number | null {
    let oldest: number | null = null;
    for (const run of this.open.values())
      if (oldest === null || run.firstSeq < oldest) oldest = run.firstSeq;
    return oldest;
  }

  get openRuns(): number {
    return this.open.size;
  }

  private closeOldest(): PageRun[] {
    let oldestKey: string | null = null;
    let oldest: PageRun | null = null;
    for (const [key, run] of this.open) {
      if (oldest === null || run.lastTsUsec < oldest.lastTsUsec) {
        oldest = run;
        oldestKey = key;
      }
    }
    if (oldestKey === null || oldest === null) return [];
    this.open.delete(oldestKey);
    if (this.last === oldest) this.last = null;
    return [oldest];
  }
}

function runKey(pageType: string, result: string, simulated: boolean): string {
  return simulated ? `s|${result}|${pageType}` : `r|${result}|${pageType}`;
}
