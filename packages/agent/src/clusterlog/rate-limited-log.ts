import type { Logger } from "pino";

// A warning that anyone can provoke (a refused TCP client, a CTR naming a device that is
// not there, a log over a limit) must not let them fill the disk with log lines (issue
// 15: 2,528 lines in 93 s). Per message, the first line goes out at once; the rest within
// the interval are counted and reported by the next line, as `suppressed`.

export class RateLimitedLog {
  readonly #log: Pick<Logger, "warn" | "error">;
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    log: Pick<Logger, "warn" | "error">,
    options: { intervalMs?: number; now?: () => number } = {},
  ) {
    this.#log = log;
    this.#intervalMs = options.intervalMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** Logs `msg` unless it was logged within the interval; returns whether it was. */
  warn(obj: Record<string, unknown>, msg: string): boolean {
    return this.#emit("warn", obj, msg);
  }

  error(obj: Record<string, unknown>, msg: string): boolean {
    return this.#emit("error", obj, msg);
  }

  #emit(level: "warn" | "error", obj: Record<string, unknown>, msg: string): boolean {
    const now = this.#now();
    const seen = this.#last.get(msg);
    if (seen && now - seen.at < this.#intervalMs) {
      seen.suppressed++;
      return false;
    }
    if (this.#last.size >= 1024 && !seen) this.#last.clear(); // bounded: messages are few
    this.#last.set(msg, { at: now, suppressed: 0 });
    this.#log[level](seen?.suppressed ? { ...obj, suppressed: seen.suppressed } : obj, msg);
    return true;
  }
}
