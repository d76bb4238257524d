import type { BlockDevice, IoResult } from "./block-device.ts";
import { EIO } from "./errno.ts";

/**
 * An in-memory BlockDevice for simulators and tests: fixed size (reads past the end return
 * zeros, writes past it fail), counts writes and flushes, and can be told to fail.
 */
export class MemoryBlockDevice implements BlockDevice {
  readonly data: Uint8Array;
  writeCount = 0;
  flushCount = 0;
  failReads = false;
  failWrites = false;

  constructor(size = 1024 * 1024) {
    this.data = new Uint8Array(size);
  }

  read(offset: number, length: number): IoResult<Uint8Array> {
    if (this.failReads) return { ok: false, error: -EIO };
    const out = new Uint8Array(length);
    out.set(this.data.subarray(offset, Math.min(offset + length, this.data.length)));
    return { ok: true, value: out };
  }

  write(offset: number, data: Uint8Array): IoResult<void> {
    if (this.failWrites || offset + data.length > this.data.length)
      return { ok: false, error: -EIO };
    this.data.set(data, offset);
    this.writeCount++;
    return { ok: true, value: undefined };
  }

  flush(): IoResult<void> {
    if (this.failWrites) return { ok: false, error: -EIO };
    this.flushCount++;
    return { ok: true, value: undefined };
  }
}
