import { constants } from "node:fs";
import { type FileHandle, mkdir, open, readFile, rename, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import {
  mergeLayouts,
  type PmemLayout,
  pmemLayoutSignature,
  readPmemLayout,
} from "../collectors/pmem-layout.ts";
import { hostPageSize } from "../collectors/tunables.ts";
import type { THostEvent } from "../events/event.ts";
import type { MirrorMap } from "../events/mirror-map.ts";
import { PmemMap } from "../events/pmem-map.ts";
import { KmsgInterpreter } from "./interpret.ts";
import { KmsgSplitter, parseKmsgRecord } from "./record.ts";

/** Where events go: the pipeline (synchronous hand-off, durable after `flush`). */
export interface EventSink {
  emit(events: THostEvent[]): void;
  flush(): Promise<void>;
}

export interface KmsgFollowerOptions {
  root: string;
  nodeId: string;
  /** File holding the resume cursor `{ bootId, seq }` (in the agent's data directory). */
  cursorPath: string;
  sink: EventSink;
  log: Logger;
  pollMs: number;
  coalesceWindowMs: number;
  mirrors?: MirrorMap | undefined;
  /** Read this many records at most before yielding to the event loop. */
  maxRecordsPerTurn?: number;
  /**
   * The pmem layout (`<root>/sys/bus/nd`) is read again when its device names change, and
   * at least this often (partitions resized in place); default one minute.
   */
  pmemLayoutMaxAgeMs?: number;
}

interface Cursor {
  bootId: string;
  seq: number;
}

const readBufferBytes = 16 * 1024; // > CONSOLE_EXT_LOG_MAX (8 KiB): a kmsg read needs room for a whole record

/**
 * Follows `<root>/dev/kmsg`: reads records without blocking (O_NONBLOCK; each read is one
 * record, EAGAIN when there are none, EPIPE when the ring overwrote unread ones), hands
 * their events to the pipeline, and saves the last fully-reported sequence number so a
 * restart resumes after it without reporting anything twice. A regular file at that path
 * (a recorded log in a fixture tree) is followed like `tail -f`.
 */
export class KmsgFollower {
  private handle: FileHandle | null = null;
  private interpreter: KmsgInterpreter | null = null;
  private readonly splitter = new KmsgSplitter();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;
  private savedSeq: number | null = null;
  private isFile = false;
  private bootId = "unknown-boot";
  private memory: PmemMap | null = null;
  private layout: PmemLayout | null = null;
  private layoutSignature = "";
  private layoutReadAt = 0;
  records = 0;
  malformedRecords = 0;

  constructor(private readonly options: KmsgFollowerOptions) {}

  get path(): string {
    return join(this.options.root, "dev/kmsg");
  }

  /** Opens the log; false (and nothing started) when it is absent or unreadable. */
  async start(): Promise<boolean> {
    try {
      this.handle = await open(this.path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (error) {
      this.options.log.debug({ err: error, path: this.path }, "kernel log not readable");
      return false;
    }
    const stat = await this.handle.stat();
    this.isFile = stat.isFile();
    this.bootId = await readBootId(this.options.root);
    const cursor = await loadCursor(this.options.cursorPath);
    const resumeAfter = cursor && cursor.bootId === this.bootId ? cursor.seq : null;
    this.savedSeq = resumeAfter;
    const pageSize = await hostPageSize(this.options.root);
    this.memory = new PmemMap({
      layout: { namespaces: [] },
      pageSize,
      mirrors: this.options.mirrors,
    });
    await this.refreshLayout(true);
    if (pageSize === null && this.memory.namespaces.length > 0)
      this.options.log.warn(
        { source: "pmem-map", root: this.options.root },
        "page size unknown (no proc/self/smaps under the root): pfns cannot be placed on pmem devices",
      );
    this.interpreter = new KmsgInterpreter({
      nodeId: this.options.nodeId,
      bootId: this.bootId,
      bootWallMs: Date.now() - monotonicUsec() / 1000,
      coalesceWindowUsec: this.options.coalesceWindowMs * 1000,
      mirrors: this.options.mirrors,
      memory: this.memory,
      resumeAfterSeq: resumeAfter,
    });
    this.options.log.info(
      {
        path: this.path,
        bootId: this.bootId,
        resumeAfterSeq: resumeAfter,
        ...(cursor && resumeAfter === null ? { previousBoot: cursor.bootId } : {}),
      },
      resumeAfter === null
        ? "following the kernel log from its oldest record"
        : "following the kernel log after the last reported record",
    );
    this.schedule(0);
    return true;
  }

  /** Resolves after the current poll (tests: wait until everything written is read). */
  async pollNow(): Promise<void> {
    this.running = this.running.then(() => this.poll());
    await this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    if (this.interpreter) {
      this.options.sink.emit(this.interpreter.drain());
      await this.checkpoint();
    }
    await this.handle?.close();
    this.handle = null;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.running = this.running.then(() => this.poll());
      void this.running.then(() => this.schedule(this.options.pollMs));
    }, ms);
  }

  /**
   * Reads the pmem layout again when the nd bus or the pmem disks changed (or it is old),
   * keeping namespaces that vanished as last known: a device that fails and goes away
   * before its kernel lines are read is still found where it was.
   */
  private async refreshLayout(force = false): Promise<void> {
    const memory = this.memory;
    if (!memory) return;
    try {
      const signature = await pmemLayoutSignature(this.options.root);
      const maxAge = this.options.pmemLayoutMaxAgeMs ?? 60_000;
      const changed = signature !== this.layoutSignature;
      if (!force && !changed && Date.now() - this.layoutReadAt < maxAge) return;
      const fresh = await readPmemLayout(this.options.root);
      this.layout = mergeLayouts(fresh, this.layout);
      memory.setLayout(this.layout);
      this.layoutSignature = signature;
      this.layoutReadAt = Date.now();
      if (force || changed)
        this.options.log.info(
          {
            source: "pmem-map",
            namespaces: this.layout.namespaces.map((n) => ({
              name: n.name,
              mode: n.mode,
              device: n.blockDevice ?? n.daxDevice,
              placed: n.start !== null,
              dataStart: n.dataStart !== null,
              gone: n.gone === true,
            })),
          },
          fresh.namespaces.length === 0
            ? "source pmem-map: absent (no pmem namespace)"
            : `source pmem-map: ${fresh.namespaces.length} pmem namespace(s) to place memory failures on`,
        );
      const unplaced = fresh.namespaces.filter(
        (n) => n.start === null || (n.positional && n.dataStart === null),
      );
      if ((force || changed) && unplaced.length > 0)
        this.options.log.warn(
          { source: "pmem-map", namespaces: unplaced.map((n) => n.name) },
          "pmem namespaces whose address or data start sysfs does not show (root-only resource files): memory failures on them are mapped conservatively (widened or whole device)",
        );
    } catch (error) {
      this.options.log.warn({ err: error }, "reading the pmem layout failed; keeping the last one");
    }
  }

  private async poll(): Promise<void> {
    const handle = this.handle;
    const interpreter = this.interpreter;
    if (!handle || !interpreter || this.stopped) return;
    await this.refreshLayout();
    const buffer = Buffer.alloc(readBufferBytes);
    const max = this.options.maxRecordsPerTurn ?? 20_000;
    let seen = 0;
    const events: THostEvent[] = [];
    try {
      for (;;) {
        let n: number;
        try {
          ({ bytesRead: n } = await handle.read(buffer, 0, buffer.length, null));
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "EAGAIN" || code === "EWOULDBLOCK") break;
          // The ring overwrote records we had not read; the next read continues with the
          // oldest one left, and the interpreter reports the sequence gap.
          if (code === "EPIPE") continue;
          throw error;
        }
        if (n === 0) break; // end of a regular file
        for (const text of this.splitter.push(buffer.toString("utf8", 0, n)))
          this.feed(text, interpreter, events);
        // A read from the device is exactly one record: complete it now.
        if (!this.isFile)
          for (const text of this.splitter.flush()) this.feed(text, interpreter, events);
        if (++seen >= max) break;
      }
      for (const text of this.splitter.flush()) this.feed(text, interpreter, events);
      // A recorded file has no "now"; at its end every open range is complete.
      events.push(...interpreter.idle(this.isFile ? Number.POSITIVE_INFINITY : monotonicUsec()));
    } catch (error) {
      this.options.log.error({ err: error, path: this.path }, "reading the kernel log failed");
    }
    if (events.length > 0) this.options.sink.emit(events);
    await this.checkpoint();
    if (seen >= max && !this.stopped) {
      // More is waiting: continue at once, after other work had its turn.
      await new Promise((resolve) => setImmediate(resolve));
      return this.poll();
    }
  }

  private feed(text: string, interpreter: KmsgInterpreter, out: THostEvent[]): void {
    const record = parseKmsgRecord(text);
    if (record === null) {
      this.malformedRecords++;
      return;
    }
    this.records++;
    for (const event of interpreter.accept(record)) out.push(event);
  }

  /** Saves the cursor once everything before it is stored or spooled. */
  private async checkpoint(): Promise<void> {
    const safe = this.interpreter?.safeSeq() ?? null;
    if (safe === null || safe === this.savedSeq) return;
    try {
      await this.options.sink.flush();
      await saveCursor(this.options.cursorPath, { bootId: this.bootId, seq: safe });
      this.savedSeq = safe;
    } catch (error) {
      this.options.log.error({ err: error }, "cannot save the kernel log cursor");
    }
  }
}

/** Microseconds on CLOCK_MONOTONIC, the clock of the kernel's record timestamps. */
export function monotonicUsec(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export async function readBootId(root: string): Promise<string> {
  try {
    const id = (await readFile(join(root, "proc/sys/kernel/random/boot_id"), "utf8")).trim();
    return /^[0-9a-f-]{8,64}$/i.test(id) ? id : "unknown-boot";
  } catch {
    return "unknown-boot";
  }
}

async function loadCursor(path: string): Promise<Cursor | null> {
  try {
    const value = JSON.parse(await readFile(path, "utf8")) as Partial<Cursor>;
    if (typeof value.bootId === "string" && Number.isSafeInteger(value.seq))
      return { bootId: value.bootId, seq: value.seq as number };
  } catch {}
  return null;
}

/** Atomic replace: a crash leaves the old cursor or the new one, never half of one. */
async function saveCursor(path: string, cursor: Cursor): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  await writeFile(tmp, `${JSON.stringify(cursor)}\n`);
  await rename(tmp, path);
}
