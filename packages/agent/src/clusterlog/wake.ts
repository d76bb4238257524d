import type { Logger } from "pino";
import type { OrderedOperation } from "./bus.ts";
import type { ClusterLogServer } from "./server.ts";

// Waking this host's mirror worker when resync work appears without any I/O.
//
// dm-raid1 asks its log for resync work (GET_RESYNC_WORK) only when its worker runs, and
// the worker runs on I/O, on a finished recovery, or on a resume. Once the log answered
// "no work" — a throttled resync whose window's allowance was spent, or one held until
// every node was re-armed — an idle mirror's worker sleeps, and the next allowance or the
// release would wait for the next I/O to the device: measured on the real kernel, an idle
// mirror throttled at 5 regions/s recovered nothing in 20 s (test/kernel-lab/guest/
// throttle.ts). So when this replica applies an operation that gives work back (`allow`
// with regions to spend or no limit, `unpause`), the agent reads one block of each of this
// host's mirror devices on that log: with a userspace log every read is queued on the
// mirror's worker, which wakes and asks again. One wake in flight per log; a request that
// arrives meanwhile runs once after it.

export interface WakeOptions {
  readonly server: ClusterLogServer;
  /** Wake this host's mirror(s) on the userspace log `uuid`. */
  readonly wake: (uuid: string) => Promise<void>;
  readonly log: Logger;
}

export interface WakeStats {
  wakes: number;
  failures: number;
}

/** Whether applying `entry` may have given this host's kernel resync work to ask for. */
export function givesWorkBack(entry: OrderedOperation): string | null {
  const op = entry.op;
  if (op.kind !== "resync") return null;
  const r = op.resync;
  if (r.action === "unpause") return r.uuid;
  if (r.action === "allow" && (r.regions === null || r.regions > 0)) return r.uuid;
  return null;
}

export class ResyncWaker {
  readonly stats: WakeStats = { wakes: 0, failures: 0 };
  readonly #options: WakeOptions;
  readonly #running = new Set<string>();
  readonly #again = new Set<string>();
  readonly #lastError = new Map<string, string>();
  #unsubscribe: (() => void) | null = null;
  #closed = false;

  constructor(options: WakeOptions) {
    this.#options = options;
  }

  start(): void {
    this.#unsubscribe ??= this.#options.server.onApplied((entry) => {
      const uuid = givesWorkBack(entry);
      // Only for a resync still running on this replica (its operations are ordered, so
      // every replica's agent wakes its own kernel).
      if (uuid !== null && this.#options.server.clusterLog.state.groups.get(uuid)?.resync) {
        this.request(uuid);
      }
    });
  }

  stop(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  request(uuid: string): void {
    if (this.#closed) return;
    if (this.#running.has(uuid)) {
      this.#again.add(uuid);
      return;
    }
    void this.#run(uuid);
  }

  async #run(uuid: string): Promise<void> {
    this.#running.add(uuid);
    try {
      await this.#options.wake(uuid);
      this.stats.wakes++;
      if (this.#lastError.delete(uuid)) {
        this.#options.log.info({ uuid }, "resync wake: this host's mirror reads again");
      }
    } catch (error) {
      this.stats.failures++;
      const message = error instanceof Error ? error.message : String(error);
      // Said once per log and reason (a throttled resync asks about once a second).
      if (this.#lastError.get(uuid) !== message) {
        this.#lastError.set(uuid, message);
        this.#options.log.warn(
          { uuid, err: message },
          "could not wake this host's mirror for its resync work: an idle mirror resyncs only as I/O reaches it",
        );
      }
    } finally {
      this.#running.delete(uuid);
      if (this.#again.delete(uuid)) this.request(uuid);
    }
  }
}
