import { type FileHandle, open } from "node:fs/promises";
import {
  DM_ULOG_CLEAR_REGION,
  DM_ULOG_CTR,
  DM_ULOG_FLUSH,
  DM_ULOG_GET_REGION_SIZE,
  DM_ULOG_GET_RESYNC_WORK,
  DM_ULOG_GET_SYNC_COUNT,
  DM_ULOG_IN_SYNC,
  DM_ULOG_IS_REMOTE_RECOVERING,
  DM_ULOG_MARK_REGION,
  DM_ULOG_POSTSUSPEND,
  DM_ULOG_PRESUSPEND,
  DM_ULOG_RESUME,
  DM_ULOG_SET_REGION_SYNC,
  encodeAscii,
  encodeSetRegionSync,
  encodeU64,
  encodeU64List,
} from "@mirrorplane/clusterlog";
import type { LogIdentity, UlogAnswer, UlogClient } from "./ulog-transfer.ts";

// A userspace mirror that behaves like the kernel side of a clustered mirror: dm-raid1's
// write path and recovery over dm-region-hash, with the userspace dirty log of
// dm-log-userspace-base.c (CLUSTERLOG-SPEC.md §2.9, §2.12, §2.13, §2.17, §3.5). Legs are
// real files. What it does, as the kernel does:
//  * a write first asks IS_REMOTE_RECOVERING (answered locally below the in_sync hint,
//    otherwise at most one query per 250 ms for the whole host, "recovering" in between)
//    and is re-queued while its region is recovering anywhere;
//  * a region's state comes from IN_SYNC; a CLEAN region is marked (→ DIRTY), NOSYNC
//    regions are written to the primary leg only, RECOVERING regions wait;
//  * marks and clears are queued and sent at the worker's flush: clears first in groups of
//    at most 32, then marks in groups of 32 and one FLUSH, or with `integrated_flush` the
//    marks as FLUSH payloads (each a commit) and a clear-only flush deferred by 3 s; a
//    failed group is re-sent one region per request;
//  * data goes to the legs only after the flush returned; when a region's last write
//    completes it becomes CLEAN and its clear is queued;
//  * recovery asks GET_RESYNC_WORK while the hint is below the region count, one region
//    at a time, waits for the region's writes to drain, copies it from the primary leg
//    to the others, then SET_REGION_SYNC (and its CLEAR at the next flush); a failed copy
//    reports SET_REGION_SYNC(r, 0); GET_SYNC_COUNT = region count sets the hint to it, so
//    no more work is asked for until the next RESUME (which resets the hint to 0);
//  * a write to a failed leg reports SET_REGION_SYNC(r, 0) (dm_rh_mark_nosync) and the
//    write completes on the surviving legs.
// Deliberate simplifications: one region per write, the primary (leg 0) never fails,
// NOSYNC writes are counted as pending so recovery waits for them too.

export interface SimMirrorOptions {
  readonly name: string;
  readonly uuid: string;
  readonly luid: bigint;
  readonly regionCount: number;
  /** Bytes per region in the leg files; a power of two ≥ 1024 (region_size = /512). */
  readonly regionBytes: number;
  /** Leg files (at least two); leg 0 is the primary (default mirror). */
  readonly legPaths: readonly string[];
  /** `M:m` of a clustered-disk log (the agent maps it to a file), or null for core. */
  readonly logDevice: string | null;
  readonly sync?: "" | "nosync";
  readonly integratedFlush?: boolean;
  /** kcopyd's pace: wait this long per region copied (dm-mirror's raid1_resync_throttle). */
  readonly recoveryDelayMs?: number;
}

export interface SimMirrorHooks {
  /** A write to `region` is about to be acknowledged (the invariant checker runs here). */
  beforeAck?(mirror: SimMirror, region: number): void;
  /** A region's recovery ended (copied and SET_REGION_SYNC sent, or failed). */
  onRecovered?(mirror: SimMirror, region: number, ok: boolean): void;
}

/** What the host's kernel shares between its mirrors. */
export interface SimKernelHost {
  readonly client: UlogClient;
  /** The function-static timestamp of userspace_is_remote_recovering (all logs). */
  remoteQueryNotBefore: number;
}

export interface SimMirrorStats {
  writes: number;
  acked: number;
  requeued: number;
  nosyncWrites: number;
  marks: number;
  clears: number;
  flushes: number;
  remoteQueries: number;
  recovered: number;
  recoveryFailures: number;
  legWriteFailures: number;
}

type RegionState = "clean" | "dirty" | "nosync" | "recovering";

interface RegionEntry {
  state: RegionState;
  pending: number;
}

interface PendingWrite {
  readonly region: number;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

const MAX_FLUSH_GROUP_COUNT = 32;

export class SimMirror {
  readonly stats: SimMirrorStats = {
    writes: 0,
    acked: 0,
    requeued: 0,
    nosyncWrites: 0,
    marks: 0,
    clears: 0,
    flushes: 0,
    remoteQueries: 0,
    recovered: 0,
    recoveryFailures: 0,
    legWriteFailures: 0,
  };
  readonly identity: LogIdentity;
  /** The kernel's in_sync_hint: regions below it are not asked about (spec §2.17). */
  inSyncHint = 0;
  /** The region being recovered by this node, if any. */
  recovering: number | null = null;
  /** Last GET_SYNC_COUNT answer (what `dmsetup status` shows). */
  syncCount = 0;
  readonly failedLegs = new Set<number>();
  #legs: FileHandle[] = [];
  readonly #regions = new Map<number, RegionEntry>();
  #markQueue: number[] = [];
  #clearQueue: number[] = [];
  #writes: PendingWrite[] = [];
  /** Writes waiting for their region's recovery to end. */
  readonly #delayed = new Map<number, PendingWrite[]>();
  #state: "new" | "active" | "suspended" | "stopped" = "new";
  #working = false;
  #again = false;
  #lazyFlush: NodeJS.Timeout | null = null;
  #requeueTimer: NodeJS.Timeout | null = null;
  #recoveryDone: Promise<void> = Promise.resolve();
  #idleWaiters: (() => void)[] = [];

  constructor(
    readonly host: SimKernelHost,
    readonly options: SimMirrorOptions,
    readonly hooks: SimMirrorHooks = {},
  ) {
    if (options.legPaths.length < 2) throw new Error("a mirror needs at least two legs");
    const sectors = options.regionBytes / 512;
    const args = [
      String(options.regionCount * sectors),
      options.logDevice ? `clustered-disk ${options.logDevice}` : "clustered-core",
      String(sectors),
      ...(options.sync ? [options.sync] : []),
    ];
    this.identity = { uuid: options.uuid, luid: options.luid, ctrArgs: args.join(" ") };
  }

  get name(): string {
    return this.options.name;
  }

  get regionCount(): number {
    return this.options.regionCount;
  }

  get active(): boolean {
    return this.#state === "active";
  }

  /** Writes queued, delayed or in flight. */
  get inFlight(): number {
    let n = this.#writes.length;
    for (const list of this.#delayed.values()) n += list.length;
    for (const e of this.#regions.values()) n += e.pending;
    return n;
  }

  #request(type: number, data?: Uint8Array, capacity = 0): Promise<UlogAnswer> {
    return this.host.client.request(this.identity, type, data, capacity);
  }

  /** Table load + resume: CTR, GET_REGION_SIZE, RESUME, GET_SYNC_COUNT (spec §2.1, §2.5). */
  async activate(): Promise<void> {
    const size = this.options.regionCount * this.options.regionBytes;
    this.#legs = [];
    for (const path of this.options.legPaths) {
      const handle = await open(path, "a+").then(async (h) => {
        await h.close();
        return open(path, "r+");
      });
      const st = await handle.stat();
      if (st.size < size) await handle.truncate(size);
      this.#legs.push(handle);
    }
    // The initial CTR does not count the NUL (spec §2.1); a CTR reply may carry the log
    // device name (≤ 128 bytes, DM_NAME_LEN).
    const ctr = await this.#request(DM_ULOG_CTR, encodeAscii(this.identity.ctrArgs), 128);
    if (ctr.error !== 0) throw new Error(`${this.name}: CTR failed (${ctr.error})`);
    const rs = await this.#request(DM_ULOG_GET_REGION_SIZE, undefined, 8);
    if (rs.error !== 0) throw new Error(`${this.name}: GET_REGION_SIZE failed (${rs.error})`);
    await this.resume();
  }

  /** RESUME: the kernel resets its hint to 0 first, so recovery asks for work again. */
  async resume(): Promise<void> {
    this.inSyncHint = 0;
    const r = await this.#request(DM_ULOG_RESUME);
    if (r.error !== 0) throw new Error(`${this.name}: RESUME failed (${r.error})`);
    this.#state = "active";
    await this.#refreshSyncCount();
    this.#wake();
  }

  /**
   * Suspend like `dmsetup suspend`: no new recovery, in-flight recovery and writes drain,
   * queued marks/clears are flushed, then PRESUSPEND and POSTSUSPEND (spec §2.3, §2.4).
   */
  async suspend(): Promise<void> {
    if (this.#state !== "active") return;
    // dm core holds new bios from here; what was issued completes.
    this.#state = "suspended";
    // The worker pass in progress may still be starting a recovery: let it finish first.
    await this.#whenIdle();
    await this.#recoveryDone;
    await this.#whenIdle();
    await this.#logFlush(true);
    await this.#request(DM_ULOG_PRESUSPEND);
    await this.#request(DM_ULOG_POSTSUSPEND);
  }

  /**
   * What the agent does to make a kernel ask for resync work again (KERNEL-BRIDGE.md).
   * Calls queue behind each other, as two `dmsetup suspend`s of one device would.
   */
  suspendResume(): Promise<void> {
    const next = this.#cycle.then(async () => {
      if (this.#state === "stopped") return;
      await this.suspend();
      await this.resume();
    });
    this.#cycle = next.catch(() => {});
    return next;
  }
  #cycle: Promise<void> = Promise.resolve();

  /** Inject a failure of leg `leg` (not the primary): its writes fail from now on. */
  failLeg(leg: number): void {
    if (leg <= 0 || leg >= this.#legs.length) throw new Error("only a secondary leg can fail");
    this.failedLegs.add(leg);
  }

  /** The leg is back (replaced or repaired); its stale regions are out of sync already. */
  repairLeg(leg: number): void {
    this.failedLegs.delete(leg);
  }

  /** Write `data` at `offset` in `region`; resolves when the kernel would complete the bio. */
  write(region: number, offset: number, data: Uint8Array): Promise<void> {
    if (region < 0 || region >= this.regionCount) return Promise.reject(new Error("bad region"));
    if (offset + data.length > this.options.regionBytes) {
      return Promise.reject(new Error("a write must stay inside its region"));
    }
    this.stats.writes++;
    return new Promise((resolve, reject) => {
      this.#writes.push({ region, offset, data, resolve, reject });
      this.#wake();
    });
  }

  /**
   * A read of `length` bytes at `offset` in `region`, as dm-raid1 over a userspace log
   * serves it: `mirror_map` cannot ask IN_SYNC without blocking, so every read is queued on
   * the worker and wakes it (do_mirror runs recovery first), which asks IN_SYNC and reads
   * the default mirror, leg 0. The agent's resync wake relies on this (agent wake.ts).
   */
  async read(region: number, offset: number, length: number): Promise<Uint8Array> {
    if (region < 0 || region >= this.regionCount) throw new Error("bad region");
    if (offset + length > this.options.regionBytes) {
      throw new Error("a read must stay inside its region");
    }
    if (this.#state === "new" || this.#state === "stopped") {
      throw new Error(`mirror ${this.options.name} is not active`);
    }
    this.#wake();
    if (this.#state === "active") await this.#request(DM_ULOG_IN_SYNC, encodeU64(region), 8);
    const buffer = new Uint8Array(length);
    await this.#legs[0]!.read(buffer, 0, length, region * this.options.regionBytes + offset);
    return buffer;
  }

  /** GET_SYNC_COUNT, as `dmsetup status` asks it. */
  async status(): Promise<{ inSync: number; total: number; recovering: number | null }> {
    await this.#refreshSyncCount();
    return { inSync: this.syncCount, total: this.regionCount, recovering: this.recovering };
  }

  async readLeg(leg: number): Promise<Uint8Array> {
    const size = this.options.regionCount * this.options.regionBytes;
    const buffer = new Uint8Array(size);
    await this.#legs[leg]!.read(buffer, 0, size, 0);
    return buffer;
  }

  /** Stop: writes still queued fail, timers stop, leg files close. No log requests. */
  async stop(): Promise<void> {
    this.#state = "stopped";
    if (this.#lazyFlush) clearTimeout(this.#lazyFlush);
    if (this.#requeueTimer) clearTimeout(this.#requeueTimer);
    const error = new Error(`${this.name} stopped`);
    for (const w of this.#writes.splice(0)) w.reject(error);
    for (const list of this.#delayed.values()) for (const w of list) w.reject(error);
    this.#delayed.clear();
    await this.#recoveryDone.catch(() => {});
    for (const leg of this.#legs) await leg.close().catch(() => {});
    this.#legs = [];
  }

  // ---- the mirror worker (do_mirror) ----

  #wake(): void {
    if (this.#state === "stopped" || this.#state === "new") return;
    if (this.#working) {
      this.#again = true;
      return;
    }
    this.#working = true;
    void this.#work();
  }

  async #work(): Promise<void> {
    try {
      do {
        this.#again = false;
        await this.#doRecovery();
        await this.#doWrites();
      } while (this.#again && this.#state !== "stopped");
    } catch (error) {
      if (this.#state !== "stopped") throw error;
    } finally {
      this.#working = false;
      this.#checkIdle();
    }
  }

  async #doRecovery(): Promise<void> {
    if (this.#state !== "active" || this.recovering !== null) return;
    if (this.#legs.length - this.failedLegs.size < 2) return;
    // userspace_get_resync_work: skipped entirely once the hint reached the region count.
    if (this.inSyncHint >= this.regionCount) return;
    const work = await this.#request(DM_ULOG_GET_RESYNC_WORK, undefined, 16);
    if (work.error !== 0 || work.data.length !== 16) return;
    const view = new DataView(work.data.buffer, work.data.byteOffset, 16);
    if (view.getBigInt64(0, true) === 0n) {
      await this.#refreshSyncCount();
      return;
    }
    const region = Number(view.getBigUint64(8, true));
    if (this.#state !== "active") return; // suspending: the slot is released at POSTSUSPEND
    this.recovering = region;
    const entry = this.#entry(region, "recovering");
    entry.state = "recovering";
    this.#recoveryDone = this.#recover(region).catch(() => {});
  }

  async #recover(region: number): Promise<void> {
    // Quiesce: the region's writes finish first; new ones wait in #delayed.
    while (this.#regions.get(region)!.pending > 0) {
      await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
    }
    let ok = true;
    if (this.options.recoveryDelayMs) {
      await new Promise((resolve) => setTimeout(resolve, this.options.recoveryDelayMs));
    }
    try {
      const bytes = this.options.regionBytes;
      const buffer = new Uint8Array(bytes);
      await this.#legs[0]!.read(buffer, 0, bytes, region * bytes);
      for (let leg = 1; leg < this.#legs.length; leg++) {
        if (this.failedLegs.has(leg)) {
          ok = false; // kcopyd reports the failed destination
          continue;
        }
        await this.#legs[leg]!.write(buffer, 0, bytes, region * bytes);
      }
    } catch {
      ok = false;
    }
    if (this.#state === "stopped") return;
    // dm_rh_update_states: SET_REGION_SYNC now, the CLEAR at the next flush (P9).
    await this.#request(DM_ULOG_SET_REGION_SYNC, encodeSetRegionSync(region, ok));
    if (ok) this.#clearQueue.push(region);
    this.#regions.delete(region);
    this.recovering = null;
    if (ok) this.stats.recovered++;
    else this.stats.recoveryFailures++;
    this.hooks.onRecovered?.(this, region, ok);
    const waiting = this.#delayed.get(region) ?? [];
    this.#delayed.delete(region);
    this.#writes.push(...waiting);
    await this.#refreshSyncCount();
    this.#wake();
  }

  async #refreshSyncCount(): Promise<void> {
    const r = await this.#request(DM_ULOG_GET_SYNC_COUNT, undefined, 8);
    if (r.error !== 0 || r.data.length !== 8) return;
    this.syncCount = Number(
      new DataView(r.data.buffer, r.data.byteOffset, 8).getBigUint64(0, true),
    );
    // userspace_get_sync_count: a complete count moves the hint to the region count.
    if (this.syncCount >= this.regionCount) this.inSyncHint = this.regionCount;
  }

  async #isRemoteRecovering(region: number): Promise<boolean> {
    if (region < this.inSyncHint) return false;
    const now = Date.now();
    if (now < this.host.remoteQueryNotBefore) return true;
    this.host.remoteQueryNotBefore = now + this.host.client.timings.remoteRecoveringWindowMs;
    this.stats.remoteQueries++;
    const r = await this.#request(DM_ULOG_IS_REMOTE_RECOVERING, encodeU64(region), 16);
    if (r.error !== 0 || r.data.length !== 16) return true;
    const view = new DataView(r.data.buffer, r.data.byteOffset, 16);
    this.inSyncHint = Number(view.getBigUint64(8, true));
    return view.getBigInt64(0, true) !== 0n;
  }

  #entry(region: number, initial: RegionState): RegionEntry {
    let entry = this.#regions.get(region);
    if (!entry) {
      entry = { state: initial, pending: 0 };
      this.#regions.set(region, entry);
    }
    return entry;
  }

  async #regionState(region: number): Promise<RegionEntry> {
    const known = this.#regions.get(region);
    if (known) return known;
    const r = await this.#request(DM_ULOG_IN_SYNC, encodeU64(region), 8);
    const inSync =
      r.error === 0 &&
      r.data.length === 8 &&
      new DataView(r.data.buffer, r.data.byteOffset, 8).getBigInt64(0, true) === 1n;
    return this.#entry(region, inSync ? "clean" : "nosync");
  }

  async #doWrites(): Promise<void> {
    if (this.#state !== "active") {
      // Suspended: queued writes wait for the resume; only what was issued completes.
      if (this.#state === "suspended") await this.#logFlush(false);
      return;
    }
    const batch = this.#writes.splice(0);
    const requeue: PendingWrite[] = [];
    const ready: { write: PendingWrite; nosync: boolean }[] = [];
    for (const write of batch) {
      const r = write.region;
      const current = this.#regions.get(r);
      if (current?.state === "recovering") {
        const list = this.#delayed.get(r) ?? [];
        list.push(write);
        this.#delayed.set(r, list);
        continue;
      }
      if (await this.#isRemoteRecovering(r)) {
        this.stats.requeued++;
        requeue.push(write);
        continue;
      }
      const entry = await this.#regionState(r);
      if (entry.state === "recovering") {
        const list = this.#delayed.get(r) ?? [];
        list.push(write);
        this.#delayed.set(r, list);
        continue;
      }
      if (entry.state === "clean") {
        entry.state = "dirty";
        this.#markQueue.push(r);
      }
      entry.pending++;
      ready.push({ write, nosync: entry.state === "nosync" });
    }
    if (requeue.length > 0) {
      this.#writes.unshift(...requeue);
      if (!this.#requeueTimer) {
        this.#requeueTimer = setTimeout(() => {
          this.#requeueTimer = null;
          this.#wake();
        }, this.host.client.timings.requeueMs);
      }
    }
    // dm_rh_flush once per pass, even with nothing queued (the kernel sends nothing then).
    const flushed = await this.#logFlush(false);
    for (const { write, nosync } of ready) {
      if (flushed !== 0) {
        this.#release(write.region);
        write.reject(new Error(`${this.name}: log flush failed (${flushed})`));
        continue;
      }
      void this.#issue(write, nosync);
    }
  }

  async #issue(write: PendingWrite, nosync: boolean): Promise<void> {
    const position = write.region * this.options.regionBytes + write.offset;
    let failedLeg = false;
    const legs = nosync ? [0] : this.#legs.map((_, i) => i);
    if (nosync) this.stats.nosyncWrites++;
    await Promise.all(
      legs.map(async (leg) => {
        if (this.failedLegs.has(leg)) {
          failedLeg = true;
          return;
        }
        await this.#legs[leg]!.write(write.data, 0, write.data.length, position);
      }),
    ).catch((error) => {
      if (this.#state !== "stopped") throw error;
    });
    if (this.#state === "stopped") return;
    if (failedLeg) {
      // dm_rh_mark_nosync: the region is out of sync until recovered again.
      this.stats.legWriteFailures++;
      const entry = this.#regions.get(write.region);
      if (entry) entry.state = "nosync";
      await this.#request(DM_ULOG_SET_REGION_SYNC, encodeSetRegionSync(write.region, false));
    }
    this.hooks.beforeAck?.(this, write.region);
    this.stats.acked++;
    write.resolve();
    this.#release(write.region);
  }

  /** dm_rh_dec: the region's last write done → CLEAN, its clear queued, entry freed. */
  #release(region: number): void {
    const entry = this.#regions.get(region);
    if (!entry) return;
    entry.pending--;
    if (entry.pending > 0) return;
    if (entry.state === "dirty") {
      this.#clearQueue.push(region);
      this.#regions.delete(region);
    } else if (entry.state === "nosync") {
      this.#regions.delete(region);
    }
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
    this.#wake();
  }

  /**
   * userspace_flush (spec §2.9): clears first (≤ 32 per request), then marks; without
   * integrated flush the marks go as MARK_REGION groups and one FLUSH follows; with it
   * each group is a FLUSH carrying marks, and a clear-only flush is deferred by 3 s.
   */
  async #logFlush(force: boolean): Promise<number> {
    const clears = this.#clearQueue.splice(0).reverse(); // the kernel's lists are LIFO
    const marks = this.#markQueue.splice(0).reverse();
    if (clears.length === 0 && marks.length === 0 && !force) return 0;
    let r = await this.#byGroup(DM_ULOG_CLEAR_REGION, clears);
    this.stats.clears += clears.length;
    if (r !== 0) return r;
    this.stats.marks += marks.length;
    if (!this.options.integratedFlush) {
      r = await this.#byGroup(DM_ULOG_MARK_REGION, marks);
      if (r !== 0) return r;
      if (clears.length === 0 && marks.length === 0 && !force) return 0;
      this.stats.flushes++;
      return (await this.#request(DM_ULOG_FLUSH)).error;
    }
    if (marks.length === 0) {
      if (force) {
        this.stats.flushes++;
        return (await this.#request(DM_ULOG_FLUSH)).error;
      }
      if (!this.#lazyFlush && clears.length > 0) {
        this.#lazyFlush = setTimeout(() => {
          this.#lazyFlush = null;
          if (this.#state === "active") {
            this.stats.flushes++;
            void this.#request(DM_ULOG_FLUSH);
          }
        }, this.host.client.timings.lazyFlushMs);
      }
      return 0;
    }
    r = await this.#byGroup(DM_ULOG_FLUSH, marks);
    this.stats.flushes++;
    if (this.#lazyFlush) {
      clearTimeout(this.#lazyFlush);
      this.#lazyFlush = null;
    }
    return r;
  }

  /** flush_by_group: ≤ 32 regions per request; a failed group is re-sent one by one. */
  async #byGroup(type: number, regions: number[]): Promise<number> {
    let result = 0;
    for (let i = 0; i < regions.length; i += MAX_FLUSH_GROUP_COUNT) {
      const group = regions.slice(i, i + MAX_FLUSH_GROUP_COUNT);
      const r = await this.#request(type, encodeU64List(group));
      if (r.error === 0) continue;
      for (const region of group) {
        const one = await this.#request(type, encodeU64List([region]));
        if (one.error !== 0) result = one.error;
      }
    }
    return result;
  }

  /** Writes issued to the legs and not completed. */
  #issued(): number {
    let n = 0;
    for (const e of this.#regions.values()) n += e.pending;
    return n;
  }

  #whenIdle(): Promise<void> {
    if (this.#issued() === 0 && !this.#working) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.#issued() === 0 && !this.#working) resolve();
        else this.#idleWaiters.push(check);
      };
      this.#idleWaiters.push(check);
    });
  }

  #checkIdle(): void {
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}
