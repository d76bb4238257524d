import { type Logger, type LoggerOptions, pino } from "pino";

// A daemon's log: pino's JSON lines to stdout through its own sonic-boom destination,
// written asynchronously so a slow reader never stalls the kernel's requests. Two things
// pino's default destination does that a daemon cannot afford (issue 14: agent processes
// were found running long after their test had sent SIGTERM twice): while stdout does not
// drain it buffers without bound, and at exit it flushes synchronously, retrying EAGAIN
// every 100 ms for as long as the reader does not read, so `process.exit` never returns.
// Here the buffer is bounded (lines past it are dropped and counted) and the flush before
// exit is bounded too; what could not be written by then is given up, and the process
// exits.

/** Lines waiting for stdout beyond this are dropped (a reader that stopped reading). */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

export interface ProcessLog {
  readonly log: Logger;
  /** Lines dropped because stdout did not drain (counted, never blocking). */
  readonly dropped: () => number;
  /**
   * Waits at most `timeoutMs` for the buffered lines to be written; then gives up what is
   * left, so nothing at exit waits for stdout. True when everything was written.
   */
  flush(timeoutMs: number): Promise<boolean>;
  /** Gives up every buffered line now (the second signal). */
  abandon(): void;
  /** `flush(timeoutMs)`, then `process.exit(code)`. */
  exit(code: number, timeoutMs?: number): Promise<never>;
}

/** Default wait for stdout before an exit: well inside a supervisor's stop timeout. */
export const EXIT_FLUSH_MS = 500;

export function processLog(
  options: LoggerOptions,
  dest: number | string = 1,
  maxBufferedBytes = MAX_BUFFERED_BYTES,
): ProcessLog {
  const stream = pino.destination({
    dest,
    sync: false,
    minLength: 0,
    maxLength: maxBufferedBytes,
  });
  let dropped = 0;
  stream.on("drop", () => {
    dropped++;
  });
  // pino's own handler covers a closed reader (EPIPE); nothing else of the stream may
  // throw into the process.
  stream.on("error", () => {});
  const log = pino(options, stream);
  // sonic-boom 4 has no public "bytes still to write", nor `destroyed` in its types; its
  // own fields say them (logging.test.ts fails if a new version renames them).
  const internals = stream as unknown as {
    _writing?: boolean;
    _len?: number;
    destroyed?: boolean;
  };
  const abandon = () => {
    // Destroyed: the buffered lines are dropped and pino's exit hook skips its blocking
    // flush (it checks `destroyed` first).
    if (!internals.destroyed) stream.destroy();
  };
  const pending = () => internals._writing === true || (internals._len ?? 0) > 0;
  const flush = (timeoutMs: number): Promise<boolean> => {
    if (internals.destroyed) return Promise.resolve(false);
    if (!pending()) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const drained = () => {
        if (pending()) return; // more was written meanwhile: the next drain
        clearTimeout(timer);
        stream.off("drain", drained);
        resolve(true);
      };
      const timer = setTimeout(() => {
        stream.off("drain", drained);
        abandon();
        resolve(false);
      }, timeoutMs);
      stream.on("drain", drained);
    });
  };
  return {
    log,
    dropped: () => dropped,
    flush,
    abandon,
    exit: async (code, timeoutMs = EXIT_FLUSH_MS) => {
      await flush(timeoutMs);
      process.exit(code);
    },
  };
}
