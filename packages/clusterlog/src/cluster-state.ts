import type { Bitmap } from "./bitmap.ts";
import type { RequestHeader } from "./codec.ts";
import { encodeLogImage, logImageSize } from "./disk-format.ts";
import { EAGAIN, EIO } from "./errno.ts";
import type { LogGroup, LogInstance, PendingReply, ResyncState } from "./log-state.ts";
import { isMember, NO_IO, serverOf } from "./log-state.ts";
import type { IoRequest, NodeId, Reply } from "./operations.ts";
import type { ReplyForm } from "./request-types.ts";

// Everything one replica holds, plus the output buffers of the operation being applied.
// Iteration that can influence output goes through sorted keys, so a replica restored from
// a snapshot (maps rebuilt in sorted order) behaves exactly like the one that built its
// maps in operation order.

export interface ClusterLogOptions {
  /**
   * Reproduce cmirrord where the spec's [REC] differs and a conformance scenario names the
   * cmirrord answer: duplicate CTR → -EINVAL and the device name on every CTR (P4, P5), a
   * core log with region size 0 → -ENOENT (scenario 4), and IS_REMOTE_RECOVERING → {0, rc}
   * while the server is presuspended (P29, scenario 19), and a core log that forgets its
   * bits when its last member suspends (`retained`). Every replica must use the same.
   */
  readonly cmirrordQuirks?: boolean;
  /**
   * Answer -ESRCH instead of -EINVAL/-ENOENT when a request names a log this node never
   * constructed (an agent restarted while the kernel had the log), for every request the
   * kernel sends through its -ESRCH wrapper (spec §1.5): the kernel then re-sends CTR and
   * RESUME and retries, instead of failing the request (a failed FLUSH fails the mirror's
   * log). cmirrord has no such answer; off by default for the conformance scenarios.
   */
  readonly esrchForUnknownLog?: boolean;
  /**
   * Largest log a CTR may construct, in regions (issue 15: a CTR of 2^31 regions took
   * 2.75 GB and a 512 MiB snapshot). Above it the CTR fails with -EINVAL. Default 2^24
   * (8 TiB at 512 KiB regions; LVM itself stops at 2^21). Every replica must use the same.
   */
  readonly maxRegions?: number;
  /**
   * Most logs (constructed instances) one node may hold at once; one more CTR fails with
   * -ENOSPC. Default 1,024. A re-CTR of an existing instance is not a new one. Every
   * replica must use the same.
   */
  readonly maxLogs?: number;
}

export const DEFAULT_MAX_REGIONS = 2 ** 24;
export const DEFAULT_MAX_LOGS = 1024;

/**
 * Takes the replies of an operation as they are produced (`ClusterLog.applyTo`), instead
 * of `Reply` objects collected in an array: a server that only copies a reply into its
 * output buffer needs no object per reply (PERF.md PB1). `payload` is empty whenever
 * `error` ≠ 0; it may be shared between replies: copy it during the call, never change
 * it. The sink must not call back into the ClusterLog.
 */
export interface ReplySink {
  reply(
    node: NodeId,
    header: RequestHeader,
    form: ReplyForm,
    error: number,
    payload: Uint8Array,
  ): void;
}

export interface PendingIo {
  readonly ioId: number;
  readonly kind: "read" | "write";
  readonly uuid: string;
  /** The node doing it; moved to the new server if that node fails. */
  node: NodeId;
  /**
   * "resume": the I/O of a master resume; "flush": a FLUSH commit; "out-of-sync": regions
   * an ordered operation made out of sync without a mark (operator resync, failed node)
   * go to disk as not clean — until then IN_SYNC does not call them out of sync
   * (`outOfSyncPending`).
   */
  readonly purpose: "resume" | "flush" | "out-of-sync";
  readonly waiters: PendingReply[];
}

/**
 * The payload of every reply without one: shared, since a zero-length array cannot be
 * changed (one allocation less per MARK, FLUSH and CLEAR, PERF.md PB1).
 */
export const NO_PAYLOAD = new Uint8Array(0);

/**
 * `ClusterState.io` while the operation being applied has requested no I/O: shared, and
 * replaced by a fresh array at the first request (most operations request none, PB1).
 */
const NO_IO_REQUESTS: IoRequest[] = [];

/** `ClusterState.retained`: whose suspend left them, the clean bits, the operator resync. */
export interface RetainedBits {
  readonly node: NodeId;
  readonly luid: bigint;
  readonly cleanBits: Bitmap;
  /** The operator resync that was running: an agent re-arms its kernel by a suspend. */
  readonly resync: ResyncState | null;
}

export function instanceKey(node: NodeId, uuid: string, luid: bigint): string {
  return `${node}\u0000${luid}\u0000${uuid}`;
}

export class ClusterState {
  readonly options: Required<ClusterLogOptions>;
  readonly nodes = new Set<NodeId>();
  readonly instances = new Map<string, LogInstance>();
  readonly groups = new Map<string, LogGroup>();
  readonly pendingIo = new Map<number, PendingIo>();
  /**
   * The clean bits of a `clustered-core` log whose last member suspended (POSTSUSPEND):
   * what a disk log would hold on disk. [REC] — unlike cmirrord, which forgets them and
   * resyncs the whole mirror after any suspend and resume of its only member; the kernel's
   * own `core` log keeps its bits across a suspend. Safe because nothing writes a log
   * nobody has resumed, and clean implies in sync (`clearRegion`), so a resume may start
   * from them exactly as from a disk — wholly only for the same table's (node, luid). Any
   * other table (another member resuming first after all suspended together, a swap,
   * lvconvert) starts from its own `sync`/`nosync` but keeps every region these bits have
   * out of sync, and the operator resync: a `nosync` table never calls in sync what the
   * cluster had out of sync (a default table resyncs everything, as the kernel's core log
   * does). Dropped by the next master resume, by a DTR of the instance, and never kept
   * after a failure.
   */
  readonly retained = new Map<string, RetainedBits>();
  nextIoId = 1;
  /** Operations applied so far: the snapshot's position in the stream (P17 [REC]). */
  position = 0;

  /** The replies of the operation being applied, when no `sink` takes them. */
  replies: Reply[] = [];
  /** Where the replies of the operation being applied go instead (`ClusterLog.applyTo`). */
  sink: ReplySink | null = null;
  io: IoRequest[] = NO_IO_REQUESTS;
  /** The last instance key built, reused while requests keep naming the same log (PB1). */
  #lastKey = { node: -1, uuid: "", luid: -1n, key: "" };

  constructor(options: ClusterLogOptions = {}) {
    this.options = {
      cmirrordQuirks: options.cmirrordQuirks ?? false,
      esrchForUnknownLog: options.esrchForUnknownLog ?? false,
      maxRegions: options.maxRegions ?? DEFAULT_MAX_REGIONS,
      maxLogs: options.maxLogs ?? DEFAULT_MAX_LOGS,
    };
  }

  reply(node: NodeId, header: RequestHeader, error: number, payload?: Uint8Array): void {
    this.emitReply(node, header, "full", error, error === 0 && payload ? payload : NO_PAYLOAD);
  }

  /** A reply of the operation being applied: to the sink, or collected in `replies`. */
  emitReply(
    node: NodeId,
    header: RequestHeader,
    form: ReplyForm,
    error: number,
    payload: Uint8Array,
  ): void {
    if (this.sink) this.sink.reply(node, header, form, error, payload);
    else this.replies.push({ node, header, form, error, payload });
  }

  /** Start collecting the output of one operation (`sink` null: replies into `replies`). */
  beginOperation(sink: ReplySink | null): void {
    this.sink = sink;
    if (!sink) this.replies = [];
    this.io = NO_IO_REQUESTS;
  }

  #pushIo(request: IoRequest): void {
    if (this.io === NO_IO_REQUESTS) this.io = [];
    this.io.push(request);
  }

  /**
   * The instance a *local* request addresses: (node, uuid, luid), luid 0 matching any
   * (cmirrord get_log). Official instances win over pending ones.
   */
  findInstance(node: NodeId, uuid: string, luid: bigint): LogInstance | null {
    if (luid !== 0n) return this.instances.get(this.#keyOf(node, uuid, luid)) ?? null;
    let found: LogInstance | null = null;
    for (const key of [...this.instances.keys()].sort()) {
      const inst = this.instances.get(key)!;
      if (inst.node !== node || inst.uuid !== uuid) continue;
      if (!found || (inst.official && !found.official)) found = inst;
    }
    return found;
  }

  /** The instance through which `node` is a member of `group`. */
  memberInstance(group: LogGroup, node: NodeId): LogInstance | null {
    const members = group.members;
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      if (m.node === node) return this.instances.get(this.#keyOf(node, group.uuid, m.luid)) ?? null;
    }
    return null;
  }

  /** `instanceKey`, memoised for the last (node, uuid, luid): a pure cache, not state. */
  #keyOf(node: NodeId, uuid: string, luid: bigint): string {
    const last = this.#lastKey;
    if (last.node === node && last.luid === luid && last.uuid === uuid) return last.key;
    const key = instanceKey(node, uuid, luid);
    this.#lastKey = { node, uuid, luid, key };
    return key;
  }

  serverInstance(group: LogGroup): LogInstance | null {
    const server = serverOf(group);
    return server === null ? null : this.memberInstance(group, server);
  }

  sortedGroupIds(): string[] {
    return [...this.groups.keys()].sort();
  }

  /** Ask the group's server to write the whole log; `waiters` are answered on completion. */
  issueWrite(group: LogGroup, purpose: PendingIo["purpose"], waiters: PendingReply[]): number {
    const server = this.serverInstance(group);
    const ioId = this.nextIoId++;
    const io: PendingIo = {
      ioId,
      kind: "write",
      uuid: group.uuid,
      node: server?.node ?? 0,
      purpose,
      waiters,
    };
    this.pendingIo.set(ioId, io);
    group.lastWriteIo = ioId;
    if (!this.ioHeld(io)) this.emitIo(io, group);
    return ioId;
  }

  issueRead(group: LogGroup, node: NodeId, waiters: PendingReply[]): void {
    const io: PendingIo = {
      ioId: this.nextIoId++,
      kind: "read",
      uuid: group.uuid,
      node,
      purpose: "resume",
      waiters,
    };
    this.pendingIo.set(io.ioId, io);
    if (!this.ioHeld(io)) this.emitIo(io, group);
  }

  /**
   * Whether `io` is held back: an earlier I/O of the same log is still pending on another
   * node. One node runs its I/O in order, but nothing orders two nodes' writes to the one
   * shared log device: after a server change (a suspend, a resume, a departure) the old
   * server's older image could land after the new server's newer one and call regions
   * clean that a completed FLUSH made dirty. So a log's I/O moves to another node only
   * once the previous node's is done. Derived from `pendingIo` alone (ascending ioIds),
   * so a replica restored from a snapshot agrees on what is held.
   */
  ioHeld(io: PendingIo): boolean {
    for (const other of this.pendingIo.values()) {
      if (other.ioId < io.ioId && other.uuid === io.uuid && other.node !== io.node) return true;
    }
    return false;
  }

  /** The ioIds of `uuid`'s held I/O (see `ioHeld`). */
  heldIo(uuid: string): Set<number> {
    const held = new Set<number>();
    if (this.pendingIo.size < 2) return held;
    for (const io of this.pendingIo.values()) {
      if (io.uuid === uuid && this.ioHeld(io)) held.add(io.ioId);
    }
    return held;
  }

  /**
   * Emit, in ioId order, the I/O of `uuid` among `candidates` (held before a completion
   * or moved by a departure) that is no longer held. A held write whose node left the
   * group goes to the current server; one with no group or server left fails like an I/O
   * of a failed node with no successor (-EIO; a read: -EAGAIN, the kernel resends RESUME).
   */
  releaseIo(uuid: string, candidates: ReadonlySet<number>): void {
    if (candidates.size === 0) return;
    const ios = [...this.pendingIo.values()]
      .filter((io) => io.uuid === uuid && candidates.has(io.ioId))
      .sort((a, b) => a.ioId - b.ioId);
    for (const io of ios) {
      const group = this.groups.get(uuid);
      if (group && io.kind === "write" && !isMember(group, io.node)) {
        const server = serverOf(group);
        if (server !== null) io.node = server;
      }
      if (this.ioHeld(io)) continue;
      if (!group || !this.memberInstance(group, io.node)) {
        this.pendingIo.delete(io.ioId);
        if (group && group.lastWriteIo === io.ioId) group.lastWriteIo = NO_IO;
        for (const w of io.waiters)
          this.reply(w.node, w.header, io.kind === "read" ? -EAGAIN : -EIO);
        continue;
      }
      this.emitIo(io, group);
    }
  }

  /**
   * Whether regions of `uuid` made out of sync without a mark may still be clean on disk
   * (an "out-of-sync" write is pending). IN_SYNC must not answer "not in sync" for them
   * meanwhile: the kernel would write such a region to the primary leg only, unmarked,
   * and the disk log would still call it clean — after a crash it would count as in sync
   * with legs that differ.
   */
  outOfSyncPending(uuid: string): boolean {
    if (this.pendingIo.size === 0) return false;
    for (const io of this.pendingIo.values()) {
      if (io.purpose === "out-of-sync" && io.uuid === uuid) return true;
    }
    return false;
  }

  /** (Re-)emit the IoRequest for a pending I/O, with the current image for writes. */
  emitIo(io: PendingIo, group: LogGroup): void {
    const inst = this.memberInstance(group, io.node);
    const logDevice = inst?.config.logDevice ?? "";
    if (io.kind === "read") {
      this.#pushIo({
        kind: "read",
        ioId: io.ioId,
        node: io.node,
        uuid: io.uuid,
        logDevice,
        length: logImageSize(group.regionCount),
      });
    } else {
      this.#pushIo({
        kind: "write",
        ioId: io.ioId,
        node: io.node,
        uuid: io.uuid,
        logDevice,
        image: encodeLogImage(group.cleanBits),
      });
    }
  }

  /** Forget `group` once its last member is gone; the disk keeps the last flushed bits. */
  dissolveIfEmpty(group: LogGroup): void {
    if (group.members.length > 0) return;
    this.groups.delete(group.uuid);
    group.lastWriteIo = NO_IO;
    // Joiners waiting on a master resume that went away: -EAGAIN makes their kernels
    // resend RESUME (spec §1.4), which then finds no group and does a master resume.
    for (const w of group.waitingResumes.splice(0)) this.reply(w.node, w.header, -EAGAIN);
  }
}
