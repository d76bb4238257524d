import { DM_ULOG_GET_RESYNC_WORK, needsRearm } from "@mirrorplane/clusterlog";
import type { Logger } from "pino";
import type { OrderedOperation } from "./bus.ts";
import type { ClusterLogServer } from "./server.ts";

// Re-arming this host's kernels (the hint guard, hint-guard.ts in @mirrorplane/clusterlog).
//
// When a region goes out of sync below the in_sync hint this node's kernel holds (a failed
// peer's marks, an operator resync, this agent restarted), the core hands it out as resync
// work to nobody else: this kernel could write it to the primary leg only while another
// node copies it. The replicated state names the node (`LogGroup.staleHints`); that node's
// agent — this class — suspends and resumes its mirror, the kernel zeroes its hint in
// `userspace_resume`, and the recovery goes on. Every agent watches only its own node, so
// no agent-to-agent call is needed.

export interface RearmOptions {
  readonly server: ClusterLogServer;
  /** Suspend and resume this host's mirror whose dm-log-userspace log is `uuid`. */
  readonly rearm: (uuid: string) => Promise<void>;
  readonly log: Logger;
  /** Look again this often (ms), for a log whose earlier attempt failed. Default 1 s. */
  readonly checkIntervalMs?: number;
  /** After a failed attempt, wait this long before the next one (ms). Default 30 s. */
  readonly retryMs?: number;
  /** At most one suspend/resume of a log per this many ms. Default 1 s. */
  readonly minIntervalMs?: number;
  readonly now?: () => number;
}

export interface RearmStats {
  rearms: number;
  failures: number;
  /** The last failure's message per log (cleared by a success): for status and operators. */
  readonly lastError: Map<string, string>;
}

export class HintRearmer {
  readonly stats: RearmStats = { rearms: 0, failures: 0, lastError: new Map() };
  readonly #options: RearmOptions;
  readonly #now: () => number;
  readonly #running = new Set<string>();
  readonly #notBefore = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #scheduled = false;
  #closed = false;

  constructor(options: RearmOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    if (this.#timer) return;
    // Stale hints are recorded by GET_RESYNC_WORK: look right after one is applied.
    this.#unsubscribe = this.#options.server.onApplied((entry: OrderedOperation) => {
      const op = entry.op;
      if (op.kind === "request" && (op.request.requestType & 0xff) === DM_ULOG_GET_RESYNC_WORK) {
        this.#schedule();
      }
    });
    this.#timer = setInterval(() => this.check(), this.#options.checkIntervalMs ?? 1000);
    this.#timer.unref();
  }

  stop(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Logs whose resync waits on this node's kernel being re-armed. */
  waiting(): string[] {
    const state = this.#options.server.clusterLog.state;
    const node = this.#options.server.nodeId;
    return [...state.groups.keys()].filter((uuid) => needsRearm(state, node, uuid)).sort();
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.check();
    });
  }

  /** Start a suspend/resume for every log that needs one and may have one now. */
  check(): void {
    if (this.#closed) return;
    let uuids: string[];
    try {
      uuids = this.waiting();
    } catch {
      return; // the server is not started (or already stopped)
    }
    const now = this.#now();
    for (const uuid of uuids) {
      if (this.#running.has(uuid) || now < (this.#notBefore.get(uuid) ?? 0)) continue;
      void this.#run(uuid);
    }
  }

  async #run(uuid: string): Promise<void> {
    const { log, rearm } = this.#options;
    this.#running.add(uuid);
    log.info({ uuid }, "re-arming this kernel's in_sync hint: suspend and resume its mirror");
    const started = this.#now();
    try {
      await rearm(uuid);
      this.stats.rearms++;
      log.info(
        { uuid, ms: this.#now() - started },
        "re-armed: the mirror was suspended and resumed",
      );
      this.stats.lastError.delete(uuid);
      this.#notBefore.set(uuid, this.#now() + (this.#options.minIntervalMs ?? 1000));
    } catch (error) {
      this.stats.failures++;
      const message = error instanceof Error ? error.message : String(error);
      this.stats.lastError.set(uuid, message);
      this.#notBefore.set(uuid, this.#now() + (this.#options.retryMs ?? 30_000));
      log.warn(
        { uuid, err: message },
        "could not suspend/resume the mirror: its resync waits until this kernel is resumed",
      );
    } finally {
      this.#running.delete(uuid);
    }
  }
}
