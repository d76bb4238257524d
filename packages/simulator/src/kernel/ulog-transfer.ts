import {
  DM_ULOG_CTR,
  DM_ULOG_HEADER_SIZE,
  DM_ULOG_RESUME,
  encodeAscii,
  encodeRequest,
  errno,
  isEsrchWrapped,
  makeRequest,
  ULOG_HEADER,
} from "@mirrorplane/clusterlog";
import type { UlogLink } from "./ulog-socket-link.ts";

// The kernel's side of the transport, modelled on dm-log-userspace-transfer.c and the
// request wrapper of dm-log-userspace-base.c (CLUSTERLOG-SPEC.md §1.4, §1.5):
//  * one global sequence counter for every log of the host, a new seq per transmission;
//  * several requests may be outstanding at once, replies are matched by seq, a reply
//    nobody waits for is dropped;
//  * no reply within the timeout (15 s) → the same request again with a new seq, forever;
//  * -EAGAIN → resend with a new seq;
//  * a reply with more payload than the caller's buffer → -ENOSPC;
//  * -ESRCH (nobody listening) → except for CTR, GET_REGION_SIZE, DTR, PRESUSPEND,
//    POSTSUSPEND, RESUME: sleep 2 s, re-send CTR with the saved string (NUL counted, no
//    reply buffer) until it succeeds, then RESUME, then the original request again.

export interface KernelTimings {
  /** DM_ULOG_RETRY_TIMEOUT (15 s). */
  readonly requestTimeoutMs: number;
  /** The -ESRCH loop's sleep (2 s). */
  readonly esrchRetryMs: number;
  /** At most one IS_REMOTE_RECOVERING query per this window (HZ/4), for all logs. */
  readonly remoteRecoveringWindowMs: number;
  /** A write told "recovering" is retried after this (dm-raid1's delayed wake, HZ/5). */
  readonly requeueMs: number;
  /** Integrated flush: a clear-only flush is sent this much later (3 s). */
  readonly lazyFlushMs: number;
}

export const KERNEL_TIMINGS: KernelTimings = {
  requestTimeoutMs: 15_000,
  esrchRetryMs: 2_000,
  remoteRecoveringWindowMs: 250,
  requeueMs: 200,
  lazyFlushMs: 3_000,
};

export interface LogIdentity {
  readonly uuid: string;
  readonly luid: bigint;
  /** The constructor string the kernel saved ("<sectors> clustered-disk …"). */
  readonly ctrArgs: string;
}

export interface UlogAnswer {
  readonly error: number;
  readonly data: Uint8Array;
}

export interface UlogClientStats {
  sent: number;
  timeouts: number;
  eagain: number;
  esrch: number;
  reconstructs: number;
  enospc: number;
}

const EMPTY = new Uint8Array(0);

export class UlogClient {
  readonly stats: UlogClientStats = {
    sent: 0,
    timeouts: 0,
    eagain: 0,
    esrch: 0,
    reconstructs: 0,
    enospc: 0,
  };
  /** Called after a log was re-constructed and resumed through the -ESRCH path. */
  onReconstructed: ((log: LogIdentity) => void) | null = null;
  #seq = 1;
  readonly #waiters = new Map<number, (answer: UlogAnswer | null) => void>();
  #closed = false;
  readonly #sleepers = new Set<() => void>();

  constructor(
    readonly link: UlogLink,
    readonly timings: KernelTimings = KERNEL_TIMINGS,
  ) {
    link.onReply = (bytes) => this.#reply(bytes);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** `userspace_do_request`: one request, answered once, whatever the server does. */
  async request(
    log: LogIdentity,
    type: number,
    data: Uint8Array = EMPTY,
    capacity = 0,
  ): Promise<UlogAnswer> {
    for (;;) {
      const answer = await this.#consult(log, type, data, capacity);
      if (answer.error !== -errno.ESRCH || !isEsrchWrapped(type) || this.#closed) return answer;
      this.stats.esrch++;
      // "Userspace log server not found": re-construct until the server takes the CTR.
      for (;;) {
        await this.sleep(this.timings.esrchRetryMs);
        if (this.#closed) return answer;
        const ctr = await this.#consult(log, DM_ULOG_CTR, encodeAscii(log.ctrArgs, true), 0);
        if (ctr.error === 0) break;
      }
      const resumed = await this.#consult(log, DM_ULOG_RESUME, EMPTY, 0);
      if (resumed.error !== 0) return { error: -errno.ESRCH, data: EMPTY };
      this.stats.reconstructs++;
      this.onReconstructed?.(log);
    }
  }

  /** `dm_consult_userspace`: send, wait, resend on timeout and -EAGAIN. */
  async #consult(
    log: LogIdentity,
    type: number,
    data: Uint8Array,
    capacity: number,
  ): Promise<UlogAnswer> {
    for (;;) {
      if (this.#closed) return { error: -errno.ESRCH, data: EMPTY };
      const seq = this.#seq;
      this.#seq = (this.#seq + 1) >>> 0 || 1;
      const encoded = encodeRequest(
        makeRequest({ node: 0, type, uuid: log.uuid, luid: log.luid, seq, data }),
      );
      if (!encoded.ok) return { error: -errno.EINVAL, data: EMPTY };
      if (!this.link.connected) await this.link.connect();
      const answer = new Promise<UlogAnswer | null>((resolve) => {
        const timer = setTimeout(() => {
          this.#waiters.delete(seq);
          resolve(null);
        }, this.timings.requestTimeoutMs);
        this.#waiters.set(seq, (a) => {
          clearTimeout(timer);
          this.#waiters.delete(seq);
          resolve(a);
        });
      });
      if (!this.link.send(encoded.value)) {
        this.#waiters.get(seq)?.({ error: -errno.ESRCH, data: EMPTY });
      } else {
        this.stats.sent++;
      }
      const got = await answer;
      if (got === null) {
        this.stats.timeouts++; // "Request timed out … retrying"
        continue;
      }
      if (got.error === -errno.EAGAIN) {
        this.stats.eagain++;
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (got.error === 0 && got.data.length > capacity) {
        this.stats.enospc++; // "Insufficient space to receive package"
        return { error: -errno.ENOSPC, data: EMPTY };
      }
      return got;
    }
  }

  #reply(bytes: Uint8Array): void {
    if (bytes.length < DM_ULOG_HEADER_SIZE) return;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const seq = view.getUint32(ULOG_HEADER.seq, true);
    const waiter = this.#waiters.get(seq);
    if (!waiter) return; // a late reply to an old seq: dropped (P2)
    const size = view.getUint32(ULOG_HEADER.dataSize, true);
    waiter({
      error: view.getInt32(ULOG_HEADER.error, true),
      data: bytes.slice(DM_ULOG_HEADER_SIZE, DM_ULOG_HEADER_SIZE + size),
    });
  }

  /** An interruptible sleep (ends early when the client closes). */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#sleepers.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#sleepers.add(done);
    });
  }

  /** The simulated host goes away: every waiting request ends with -ESRCH. */
  close(): void {
    this.#closed = true;
    for (const waiter of [...this.#waiters.values()]) waiter({ error: -errno.ESRCH, data: EMPTY });
    for (const wake of [...this.#sleepers]) wake();
    this.link.close();
  }
}
