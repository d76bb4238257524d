import { type FileHandle, mkdir, open, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { isHostEvent, type THostEvent } from "./event.ts";

/**
 * The local append-only spool: events waiting for Postgres, one JSON object per line.
 * A crash can leave a torn last line; opening the spool cuts it off (the events of that
 * write were never acknowledged as spooled). Unreadable lines in the middle (a disk
 * error, a hand edit) are skipped and counted, never fatal. Bounded by `maxBytes`.
 */
export class EventSpool {
  private handle: FileHandle | null = null;
  private bytes = 0;
  private count = 0;
  /** Bytes cut off a torn tail when the spool was opened. */
  tornBytes = 0;
  /** Lines skipped as unreadable while replaying. */
  corruptLines = 0;

  constructor(
    readonly path: string,
    readonly maxBytes: number,
  ) {}

  /** Opens (creating) the spool and repairs a torn tail. */
  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    this.handle = await open(this.path, "a+", 0o600);
    const size = (await this.handle.stat()).size;
    let end = size;
    if (size > 0) {
      // Find the last newline: everything after it is a torn write.
      const chunk = Buffer.alloc(Math.min(size, 64 * 1024));
      let pos = size;
      end = 0;
      while (pos > 0) {
        const len = Math.min(chunk.length, pos);
        pos -= len;
        await this.handle.read(chunk, 0, len, pos);
        const nl = chunk.subarray(0, len).lastIndexOf(10);
        if (nl >= 0) {
          end = pos + nl + 1;
          break;
        }
      }
      if (end < size) {
        this.tornBytes = size - end;
        await this.handle.truncate(end);
      }
    }
    this.bytes = end;
    this.count = end > 0 ? await this.countLines() : 0;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  /** Events in the spool (lines; a corrupt one counts until it is skipped on replay). */
  get size(): number {
    return this.count;
  }

  /**
   * Appends as many events as fit under the bound, durably (fdatasync), and returns how
   * many were written; the caller accounts for the rest as dropped.
   */
  async append(events: THostEvent[]): Promise<number> {
    const handle = this.requireOpen();
    const lines: string[] = [];
    let bytes = 0;
    for (const event of events) {
      const line = `${JSON.stringify(event)}\n`;
      const len = Buffer.byteLength(line);
      if (this.bytes + bytes + len > this.maxBytes) break;
      lines.push(line);
      bytes += len;
    }
    if (lines.length === 0) return 0;
    await handle.write(lines.join(""), null, "utf8");
    await handle.datasync();
    this.bytes += bytes;
    this.count += lines.length;
    return lines.length;
  }

  /** Reads the spool oldest first, in batches. */
  async *batches(batchSize: number): AsyncGenerator<THostEvent[]> {
    const handle = this.requireOpen();
    const buffer = Buffer.alloc(1024 * 1024);
    let position = 0;
    let carry = "";
    let batch: THostEvent[] = [];
    while (position < this.bytes) {
      const { bytesRead } = await handle.read(
        buffer,
        0,
        Math.min(buffer.length, this.bytes - position),
        position,
      );
      if (bytesRead === 0) break;
      position += bytesRead;
      const text = carry + buffer.toString("utf8", 0, bytesRead);
      const lines = text.split("\n");
      carry = lines.pop() ?? "";
      for (const line of lines) {
        const event = this.decode(line);
        if (event === null) continue;
        batch.push(event);
        if (batch.length >= batchSize) {
          yield batch;
          batch = [];
        }
      }
    }
    if (carry.length > 0) {
      const event = this.decode(carry);
      if (event !== null) batch.push(event);
    }
    if (batch.length > 0) yield batch;
  }

  /** Everything replayed: empty the spool. */
  async clear(): Promise<void> {
    await this.requireOpen().truncate(0);
    this.bytes = 0;
    this.count = 0;
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }

  private decode(line: string): THostEvent | null {
    if (line.length === 0) return null;
    try {
      const value: unknown = JSON.parse(line);
      if (isHostEvent(value)) return value;
    } catch {}
    this.corruptLines++;
    return null;
  }

  private async countLines(): Promise<number> {
    const handle = this.requireOpen();
    const buffer = Buffer.alloc(1024 * 1024);
    let n = 0;
    for (let pos = 0; pos < this.bytes; ) {
      const { bytesRead } = await handle.read(
        buffer,
        0,
        Math.min(buffer.length, this.bytes - pos),
        pos,
      );
      if (bytesRead === 0) break;
      for (let i = 0; i < bytesRead; i++) if (buffer[i] === 10) n++;
      pos += bytesRead;
    }
    return n;
  }

  private requireOpen(): FileHandle {
    if (this.handle === null) throw new Error(`event spool ${this.path} is not open`);
    return this.handle;
  }
}

export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
