/**
 * `/dev/kmsg` records (Documentation/ABI/testing/dev-kmsg):
 *
 *     <prio>,<seq>,<ts_usec>,<flags>[,…];<message>\n
 *      KEY=value\n            (zero or more dictionary lines, each starting with a space)
 *
 * prio = facility × 8 + level; seq is the record's 64-bit sequence number (reset at boot);
 * ts_usec is the kernel's timestamp in µs since boot; flags is `-`, `c` (first fragment of
 * a continued line) or `+` (a following fragment, older kernels). Non-printable bytes in
 * the message are escaped as `\xNN` by the kernel. Pure functions: no I/O.
 */
export interface KmsgRecord {
  facility: number;
  level: number;
  seq: number;
  tsUsec: number;
  flags: string;
  message: string;
  /** Dictionary (`SUBSYSTEM=block`, `DEVICE=b259:0`), when the record has one. */
  dict?: Record<string, string> | undefined;
}

/** A kernel record's message is at most ~1 KiB; anything far longer is not a record. */
export const maxRecordBytes = 16 * 1024;

function isDigits(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return to > from;
}

/** Parses one record's text (header line plus any dictionary lines); null if malformed. */
export function parseKmsgRecord(text: string): KmsgRecord | null {
  if (text.length > maxRecordBytes) return null;
  const nl = text.indexOf("\n");
  const first = nl < 0 ? text : text.slice(0, nl);
  // Hand-rolled header scan (a storm is a million records): `prio,seq,ts,flags[,…];`.
  const c1 = first.indexOf(",");
  const c2 = c1 < 0 ? -1 : first.indexOf(",", c1 + 1);
  const c3 = c2 < 0 ? -1 : first.indexOf(",", c2 + 1);
  const semi = c3 < 0 ? -1 : first.indexOf(";", c3 + 1);
  if (semi < 0 || c1 < 1 || c1 > 4 || c2 - c1 < 2 || c2 - c1 > 21 || c3 - c2 < 2 || c3 - c2 > 21)
    return null;
  if (!isDigits(first, 0, c1) || !isDigits(first, c1 + 1, c2) || !isDigits(first, c2 + 1, c3))
    return null;
  const prio = Number(first.slice(0, c1));
  const seq = Number(first.slice(c1 + 1, c2));
  const tsUsec = Number(first.slice(c2 + 1, c3));
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(tsUsec)) return null;
  const c4 = first.indexOf(",", c3 + 1);
  const flagsEnd = c4 >= 0 && c4 < semi ? c4 : semi;
  const record: KmsgRecord = {
    facility: prio >> 3,
    level: prio & 7,
    seq,
    tsUsec,
    flags: flagsEnd > c3 + 1 ? first.slice(c3 + 1, flagsEnd) : "-",
    message: first.slice(semi + 1),
  };
  if (nl >= 0) {
    const dict: Record<string, string> = {};
    let any = false;
    for (const line of text.slice(nl + 1).split("\n")) {
      if (!line.startsWith(" ")) continue;
      const eq = line.indexOf("=");
      if (eq < 2) continue;
      dict[line.slice(1, eq)] = line.slice(eq + 1);
      any = true;
    }
    if (any) record.dict = dict;
  }
  return record;
}

/**
 * Splits a byte stream into record texts. A read from `/dev/kmsg` returns exactly one
 * record, but a recorded log (a file in a fixture tree, a test) is many records back to
 * back, so records are delimited the same way in both cases: a line that does not start
 * with a space begins a new record. Hostile input is bounded: an unterminated line longer
 * than `maxRecordBytes` is discarded (and counted), never buffered without limit.
 */
export class KmsgSplitter {
  private carry = "";
  private current: string[] = [];
  /** Inside an overlong line whose start was discarded: drop it up to its newline. */
  private skipping = false;
  discardedBytes = 0;

  /** Feeds a chunk; returns the records completed by it. */
  push(chunk: string): string[] {
    const out: string[] = [];
    let text = this.carry + chunk;
    this.carry = "";
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      if (this.skipping) {
        this.discardedBytes += nl - start;
        this.skipping = false;
      } else this.line(text.slice(start, nl), out);
      start = nl + 1;
    }
    text = text.slice(start);
    if (this.skipping) {
      this.discardedBytes += text.length;
      text = "";
    } else if (text.length > maxRecordBytes) {
      this.discardedBytes += text.length;
      this.skipping = true;
      text = "";
    }
    this.carry = text;
    return out;
  }

  /** The record in progress is complete (a read returned nothing more): hand it out. */
  flush(): string[] {
    const out: string[] = [];
    if (this.current.length > 0) out.push(this.current.join("\n"));
    this.current = [];
    return out;
  }

  private line(line: string, out: string[]): void {
    if (line.length === 0) return;
    if (line.startsWith(" ")) {
      // A dictionary line belongs to the record before it; an orphan one is dropped.
      if (this.current.length > 0 && this.current.length < 64) this.current.push(line);
      return;
    }
    if (this.current.length > 0) out.push(this.current.join("\n"));
    if (line.length > maxRecordBytes) {
      this.discardedBytes += line.length;
      this.current = [];
      return;
    }
    this.current = [line];
  }
}

/** Kernel timestamp (µs since boot) → wall time (epoch ms), given the boot's wall time. */
export function kernelTimeToWall(tsUsec: number, bootWallMs: number): number {
  return Math.round(bootWallMs + tsUsec / 1000);
}

/** `DEVICE=` dictionary values: `b259:0` (block major:minor), `+nvme:nvme0`, `n8` (netdev). */
export function dictDevice(dict: Record<string, string> | undefined): string | null {
  const value = dict?.DEVICE;
  if (!value) return null;
  if (value[0] === "b" || value[0] === "c") return value.slice(1);
  if (value[0] === "+") {
    const colon = value.indexOf(":");
    return colon > 0 ? value.slice(colon + 1) : value.slice(1);
  }
  return value;
}
