import { EIO } from "./errno.ts";
import type { IoRequest, Operation } from "./operations.ts";

// The one place the core meets a device: the interface the agent implements over a real
// file or block device, and the two helpers that run a core-requested `IoRequest` on it.
// The core itself only *requests* I/O (operations.ts); the image bytes are disk-format.ts's.

/** Negative errno on failure, like the kernel's I/O paths. */
export type IoResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: number };

/**
 * What the agent implements over a real file or block device. Synchronous on purpose: the
 * log image is small (256 KiB at the 2 M-region LVM cap) and a synchronous pwrite plus
 * fdatasync costs ~0.2–0.7 ms (PERF.md row 6).
 */
export interface BlockDevice {
  read(offset: number, length: number): IoResult<Uint8Array>;
  write(offset: number, data: Uint8Array): IoResult<void>;
  /** Make earlier writes durable (fdatasync). spec §4.7 [REC], pitfall P33. */
  flush(): IoResult<void>;
}

/** Whole-image write at offset 0, then fdatasync (spec §4.7 [REC], §10). */
export function writeLogImage(device: BlockDevice, image: Uint8Array): IoResult<void> {
  const written = device.write(0, image);
  if (!written.ok) return written;
  return device.flush();
}

/**
 * Run one `IoRequest` against the device the agent opened for it and return the
 * `io-done` operation to publish into the ordered stream.
 */
export function performLogIo(io: IoRequest, device: BlockDevice | null): Operation {
  if (!device) return { kind: "io-done", ioId: io.ioId, error: -EIO };
  if (io.kind === "read") {
    const read = device.read(0, io.length);
    return read.ok
      ? { kind: "io-done", ioId: io.ioId, error: 0, data: read.value }
      : { kind: "io-done", ioId: io.ioId, error: read.error };
  }
  const written = writeLogImage(device, io.image);
  return { kind: "io-done", ioId: io.ioId, error: written.ok ? 0 : written.error };
}
