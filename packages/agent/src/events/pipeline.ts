import type { TPipelineStats } from "@mirrorplane/contracts";
import { type EventRow, type IngestPool, insertEvents, isDataError } from "@mirrorplane/db/ingest";
import type { Logger } from "pino";
import type { THostEvent } from "./event.ts";
import { EventSpool } from "./spool.ts";

export interface EventPipelineOptions {
  /** Null: no database configured; events are counted and logged, not stored. */
  pool: IngestPool | null;
  nodeId: string;
  spoolPath: string;
  spoolMaxBytes: number;
  log: Logger;
  /** Rows per INSERT (and per spool read on replay). */
  batchSize?: number;
  /** How long emitted events may wait to be batched. */
  flushDelayMs?: number;
  /** Wait between attempts to reach Postgres again while it is down. */
  retryMs?: number;
  /** Events held in memory at most; beyond it they are dropped and counted. */
  maxQueued?: number;
  /** Runs before the first write after (re)connecting: registers the node (foreign key). */
  beforeWrite?: () => Promise<void>;
  /** Called for every event accepted (metrics). */
  onEvent?: (event: THostEvent) => void;
  /** Clock for the agent's own events (tests). */
  now?: () => number;
}

/** The counters `events.status` reports (the contract's `ZPipelineStats`). */
export type PipelineStats = TPipelineStats;

/**
 * The event pipeline: producers `emit()` synchronously (no I/O, never throws, never
 * waits — the cluster-log path must not block on it); batches go to Postgres as one
 * set-based insert. While Postgres is unreachable, batches go to the local spool, and are
 * replayed, oldest first, once it is back. Idempotency keys make every write and replay
 * safe to repeat: nothing lost, nothing stored twice. When the spool is full, further
 * events are dropped and counted, logged once, and reported by one `spool_full` event
 * that is kept in memory until it can be stored.
 */
export class EventPipeline {
  private queue: THostEvent[] = [];
  private readonly spool: EventSpool;
  private chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private dbUp = true;
  private needsBeforeWrite = true;
  private stopped = false;
  /** `stop` gave up on a write that Postgres never answered. */
  private abandoned = false;
  private spoolFull: { since: number; dropped: number; key: string } | null = null;
  private readonly notices: THostEvent[] = [];
  private readonly batchSize: number;
  private readonly flushDelayMs: number;
  private readonly retryMs: number;
  private readonly maxQueued: number;
  private readonly now: () => number;
  readonly stats: Omit<
    PipelineStats,
    "queued" | "spoolEvents" | "spoolBytes" | "databaseReachable"
  > = { written: 0, duplicates: 0, spooled: 0, replayed: 0, dropped: 0, rejected: 0 };

  constructor(private readonly options: EventPipelineOptions) {
    this.spool = new EventSpool(options.spoolPath, options.spoolMaxBytes);
    this.batchSize = options.batchSize ?? 2000;
    this.flushDelayMs = options.flushDelayMs ?? 200;
    this.retryMs = options.retryMs ?? 2000;
    this.maxQueued = options.maxQueued ?? 200_000;
    this.now = options.now ?? Date.now;
  }

  /** Opens the spool (repairing a torn tail) and replays whatever an earlier run left. */
  async start(): Promise<void> {
    await this.spool.open();
    if (this.spool.tornBytes > 0)
      this.options.log.warn(
        { path: this.spool.path, tornBytes: this.spool.tornBytes },
        "event spool had a torn last write (crash while spooling); cut it off",
      );
    if (this.spool.size > 0) {
      this.options.log.info(
        { path: this.spool.path, events: this.spool.size },
        "event spool holds events from an earlier run; replaying",
      );
      this.enqueueWork();
    }
  }

  /** Hands events to the pipeline. Synchronous, no I/O, never throws. */
  emit(events: THostEvent | THostEvent[]): void {
    if (this.stopped) return;
    const list = Array.isArray(events) ? events : [events];
    for (const event of list) {
      if (this.queue.length >= this.maxQueued) {
        this.drop(1);
        continue;
      }
      this.queue.push(event);
      try {
        this.options.onEvent?.(event);
      } catch {}
    }
    if (this.queue.length >= this.batchSize) this.enqueueWork();
    else if (this.timer === null && this.queue.length > 0)
      this.timer = setTimeout(() => {
        this.timer = null;
        this.enqueueWork();
      }, this.flushDelayMs);
  }

  /**
   * Resolves once every event emitted before the call is stored, spooled, or counted as
   * dropped (the kernel-log reader saves its cursor after this).
   */
  flush(): Promise<void> {
    // Stopped: what is emitted now is not taken, so nobody may be told it is stored (the
    // kernel-log reader would save its cursor past it).
    if (this.stopped) return Promise.reject(new Error("the event pipeline is stopped"));
    return this.enqueueWork();
  }

  /**
   * Drains (one last attempt at Postgres, else the spool) and closes the spool. With
   * `timeoutMs`, a Postgres that does not answer in time (hung, or a path dropping packets:
   * issue 14, SIGTERM exits within 2 s) is given up on: every event still in memory goes to
   * the spool, the write in flight is abandoned (its rows, if they land after all, are
   * stored once: the replay's keys de-duplicate), and the result says how many were kept.
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<{ drained: boolean; kept: number }> {
    const flushed = this.flush().then(() => true);
    let deadline: NodeJS.Timeout | undefined;
    const drained =
      options.timeoutMs === undefined
        ? await flushed
        : await Promise.race([
            flushed,
            new Promise<false>((resolve) => {
              deadline = setTimeout(() => resolve(false), options.timeoutMs);
            }),
          ]);
    clearTimeout(deadline);
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (drained) {
      await this.chain;
      await this.spool.close();
      return { drained, kept: 0 };
    }
    // The chain is stuck in a write: nothing after this may clear the spool or take the
    // queue (the abandoned write checks `abandoned` after every await).
    this.abandoned = true;
    const left = [...this.notices, ...this.takeQueue()];
    this.notices.length = 0;
    if (this.spoolFull) {
      left.push(this.spoolFullEvent(this.spoolFull));
      this.spoolFull = null;
    }
    await this.toSpool(left);
    await this.spool.close();
    return { drained, kept: left.length };
  }

  snapshot(): PipelineStats {
    return {
      ...this.stats,
      queued: this.queue.length,
      spoolEvents: this.spool.size,
      spoolBytes: this.spool.sizeBytes,
      databaseReachable: this.dbUp,
    };
  }

  private enqueueWork(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.chain = this.chain.then(
      () => this.work(),
      () => this.work(),
    );
    return this.chain;
  }

  /** Serialised: one write path at a time, so spool order is emit order. */
  private async work(): Promise<void> {
    if (this.abandoned || (this.stopped && this.queue.length === 0)) return;
    const pool = this.options.pool;
    if (pool === null) {
      this.stats.written += this.queue.length;
      this.queue = [];
      return;
    }
    // Down, and a retry is already scheduled: straight to the spool, no connection storm.
    if (!this.dbUp && this.retryTimer !== null && !this.stopped) {
      await this.toSpool(this.takeQueue());
      return;
    }
    // Replay first: older events before newer ones.
    if (this.spool.size > 0 || this.notices.length > 0 || this.spoolFull !== null) {
      if (!(await this.replay(pool))) {
        await this.toSpool(this.takeQueue());
        this.scheduleRetry();
        return;
      }
    }
    while (this.queue.length > 0) {
      const batch = this.queue.slice(0, this.batchSize);
      try {
        await this.write(pool, batch);
        if (this.abandoned) return; // `stop` spooled the queue, this batch with it
        this.queue.splice(0, batch.length);
      } catch (error) {
        this.wentDown(error);
        await this.toSpool(this.takeQueue());
        this.scheduleRetry();
        return;
      }
    }
  }

  private takeQueue(): THostEvent[] {
    const all = this.queue;
    this.queue = [];
    return all;
  }

  private async write(pool: IngestPool, batch: THostEvent[]): Promise<number> {
    if (this.needsBeforeWrite && this.options.beforeWrite) {
      await this.options.beforeWrite();
    }
    this.needsBeforeWrite = false;
    const inserted = await this.insertResilient(pool, batch);
    if (!this.dbUp) {
      this.dbUp = true;
      this.options.log.info("database reachable again; writing events");
    }
    return inserted;
  }

  /**
   * A batch Postgres refuses for its data (not for the connection) is split until the
   * bad rows are isolated; those are rejected, logged and counted, the rest stored. A
   * poison event must not hold every later event in the spool forever.
   */
  private async insertResilient(pool: IngestPool, batch: THostEvent[]): Promise<number> {
    try {
      const inserted = await insertEvents(pool, this.options.nodeId, batch.map(toRow));
      this.stats.written += inserted;
      this.stats.duplicates += batch.length - inserted;
      return inserted;
    } catch (error) {
      if (!isDataError(error)) throw error;
      if (batch.length === 1) {
        this.stats.rejected++;
        this.options.log.error(
          { err: error, key: batch[0]!.key, kind: batch[0]!.kind },
          "database refused an event; it is not stored",
        );
        return 0;
      }
      const half = batch.length >> 1;
      return (
        (await this.insertResilient(pool, batch.slice(0, half))) +
        (await this.insertResilient(pool, batch.slice(half)))
      );
    }
  }

  /** Writes the spool (then the notices) to Postgres; false if Postgres is still down. */
  private async replay(pool: IngestPool): Promise<boolean> {
    try {
      if (this.spool.size > 0) {
        let replayed = 0;
        for await (const batch of this.spool.batches(this.batchSize)) {
          await this.write(pool, batch);
          if (this.abandoned) return false; // the rest stays in the spool
          replayed += batch.length;
        }
        const corrupt = this.spool.corruptLines;
        await this.spool.clear();
        this.stats.replayed += replayed;
        this.options.log.info(
          { replayed, corruptLines: corrupt },
          "event spool replayed into the database",
        );
        this.spool.corruptLines = 0;
      }
      if (this.spoolFull) {
        // The outage is over: the notice carries the final count of what was lost.
        const full = this.spoolFull;
        this.spoolFull = null;
        this.notices.push(this.spoolFullEvent(full));
      }
      if (this.notices.length > 0) {
        const notices = this.notices.slice();
        await this.write(pool, notices);
        if (this.abandoned) return false;
        this.notices.splice(0, notices.length);
      }
      return true;
    } catch (error) {
      this.wentDown(error);
      return false;
    }
  }

  private async toSpool(events: THostEvent[]): Promise<void> {
    if (events.length === 0) return;
    let written = 0;
    try {
      written = await this.spool.append(events);
    } catch (error) {
      this.options.log.error({ err: error, path: this.spool.path }, "cannot write the event spool");
    }
    this.stats.spooled += written;
    if (written < events.length) this.drop(events.length - written);
  }

  private drop(n: number): void {
    this.stats.dropped += n;
    if (this.spoolFull === null) {
      const since = this.now();
      this.spoolFull = {
        since,
        dropped: 0,
        key: `${this.options.nodeId}:agent:spool_full:${since}`,
      };
      this.options.log.error(
        {
          path: this.spool.path,
          maxBytes: this.spool.maxBytes,
          spooledEvents: this.spool.size,
          queued: this.queue.length,
        },
        "event spool is full: dropping new events until the database is reachable again (raise spoolMaxBytes or restore the database)",
      );
    }
    this.spoolFull.dropped += n;
  }

  private spoolFullEvent(full: { since: number; dropped: number; key: string }): THostEvent {
    return {
      key: full.key,
      kind: "agent",
      severity: "error",
      source: "agent",
      occurredAt: full.since,
      device: null,
      message: `event spool full (${this.spool.maxBytes} bytes at ${this.spool.path}): ${full.dropped} events dropped while the database was unreachable`,
      count: full.dropped,
      simulated: false,
      data: { what: "spool_full", dropped: full.dropped, maxBytes: this.spool.maxBytes },
    };
  }

  private wentDown(error: unknown): void {
    this.needsBeforeWrite = true;
    if (this.dbUp) {
      this.dbUp = false;
      this.options.log.error(
        { err: error, spool: this.spool.path },
        "cannot write events; spooling them until the database is back",
      );
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer !== null || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) void this.enqueueWork();
    }, this.retryMs);
    this.retryTimer.unref();
  }
}

export function toRow(e: THostEvent): EventRow {
  return {
    idempotencyKey: e.key,
    kind: e.kind,
    severity: e.severity,
    source: e.source,
    occurredAt: new Date(e.occurredAt),
    device: e.device ?? null,
    message: e.message,
    rangeStart: e.range?.start ?? null,
    rangeEnd: e.range?.end ?? null,
    rangeUnit: e.range?.unit ?? null,
    count: e.count,
    mirror: e.mirror ?? null,
    leg: e.leg ?? null,
    regionStart: e.regions?.start ?? null,
    regionEnd: e.regions?.end ?? null,
    simulated: e.simulated,
    rawLine: e.rawLine ?? null,
    kernelSeq: e.kernelSeq ?? null,
    kernelTimeUs: e.kernelTimeUs ?? null,
    data: e.data,
  };
}
