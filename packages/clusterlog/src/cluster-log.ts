import {
  type ClusterLogOptions,
  ClusterState,
  NO_PAYLOAD,
  type PendingIo,
  type ReplySink,
} from "./cluster-state.ts";
import type { DmUlogRequest, RequestHeader } from "./codec.ts";
import { parseCtr } from "./ctr-args.ts";
import { EAGAIN, EINVAL, EIO, ENOENT, ESRCH } from "./errno.ts";
import { type LogGroup, NO_IO, releaseMember } from "./log-state.ts";
import type {
  ApplyResult,
  IoRequest,
  NodeId,
  Operation,
  Reply,
  ResyncOutcome,
} from "./operations.ts";
import {
  DEFERRED,
  type Outcome,
  type RequestContext,
  type RequestHandler,
} from "./request-context.ts";
import {
  checkRequestPayloadSize,
  DM_ULOG_CLEAR_REGION,
  DM_ULOG_GET_REGION_SIZE,
  DM_ULOG_GET_SYNC_COUNT,
  DM_ULOG_IN_SYNC,
  DM_ULOG_STATUS_TABLE,
  isEsrchWrapped,
  isRequestType,
  maskRequestType,
  type RequestType,
  replyForm,
} from "./request-types.ts";
import {
  ctr,
  ctrLimitRefusal,
  dtr,
  masterResumeDone,
  masterResumeRead,
  postsuspend,
  presuspend,
  resume,
  syncServerHealth,
} from "./requests-lifecycle.ts";
import { clearRegion, flush, inSync, isClean, markRegion } from "./requests-regions.ts";
import {
  getResyncWork,
  getSyncCount,
  isRemoteRecovering,
  setRegionSync,
} from "./requests-resync.ts";
import { getRegionSize, statusInfo, statusTable } from "./requests-status.ts";
import type { Result } from "./result.ts";
import { applyResync, issueOutOfSyncWrite } from "./resync.ts";
import {
  beginSnapshot,
  decodeSnapshot,
  encodeSnapshot,
  type SnapshotError,
  type SnapshotJob,
  type SnapshotJobOptions,
} from "./snapshot.ts";

/** One handler per request type, like the kernel's dm-log.c (spec §2). */
const HANDLERS: Record<RequestType, RequestHandler> = {
  1: ctr,
  2: dtr,
  3: presuspend,
  4: postsuspend,
  5: resume,
  6: getRegionSize,
  7: isClean,
  8: inSync,
  9: flush,
  10: markRegion,
  11: clearRegion,
  12: getResyncWork,
  13: setRegionSync,
  14: getSyncCount,
  15: statusInfo,
  16: statusTable,
  17: isRemoteRecovering,
};

/** Local, read-only requests (spec §4.2); their handlers never change state. */
const LOCAL_READ_ONLY = new Set<number>([
  DM_ULOG_GET_REGION_SIZE,
  DM_ULOG_IN_SYNC,
  DM_ULOG_GET_SYNC_COUNT,
  DM_ULOG_STATUS_TABLE,
]);

/**
 * The replicated cluster log: every log of every node, driven only by `apply`. Replicas
 * that apply the same operations produce identical replies, I/O requests and snapshots;
 * each agent forwards the replies addressed to its own node and performs the I/O
 * addressed to it.
 */
export class ClusterLog {
  #state: ClusterState;
  #adopted = false;

  constructor(options: ClusterLogOptions = {}) {
    this.#state = new ClusterState(options);
  }

  /** Operations applied so far (the snapshot's position in the stream). */
  get position(): number {
    return this.#state.position;
  }

  /** Read-only view for agents, dashboards and tests. */
  get state(): Readonly<ClusterState> {
    return this.#state;
  }

  apply(op: Operation): ApplyResult {
    const state = this.#state;
    state.beginOperation(null);
    const resync = this.#apply(op);
    // Fresh arrays for the caller: the shared empty one must never be handed out.
    const io = state.io.length === 0 ? [] : state.io;
    return resync ? { replies: state.replies, io, resync } : { replies: state.replies, io };
  }

  /**
   * `apply`, with every reply handed to `sink` as it is produced instead of collected as a
   * `Reply` object (PERF.md PB1: the server copies replies straight into its output).
   * Returns the I/O requested; do not change the array (it may be shared when empty).
   */
  applyTo(op: Operation, sink: ReplySink): readonly IoRequest[] {
    const state = this.#state;
    state.beginOperation(sink);
    try {
      this.#apply(op);
    } finally {
      state.sink = null;
    }
    return state.io;
  }

  #apply(op: Operation): ResyncOutcome | undefined {
    const state = this.#state;
    state.position++;
    switch (op.kind) {
      case "request":
        this.#request(op.node, op.request);
        return undefined;
      case "io-done":
        this.#ioDone(op.ioId, op.error, op.data ?? null);
        return undefined;
      case "node-join":
        state.nodes.add(op.node);
        return undefined;
      case "node-leave":
      case "node-failed":
        this.#nodeDown(op.node);
        return undefined;
      case "resync":
        return applyResync(state, op.resync);
    }
  }

  /**
   * Answer a read-only request cmirrord serves from the local replica (spec §4.2:
   * GET_REGION_SIZE, IN_SYNC, GET_SYNC_COUNT, STATUS_TABLE) without ordering it. Returns
   * null for every other request, which must go through `apply`. Changes nothing, so the
   * replica stays identical to its peers.
   */
  answerLocally(node: NodeId, request: DmUlogRequest): Reply | null {
    let answer: Reply | null = null;
    this.answerLocallyTo(node, request, {
      reply: (to, header, form, error, payload) => {
        // A copy: the payload may be shared (`ReplySink`), and the caller keeps this one.
        answer = {
          node: to,
          header,
          form,
          error,
          payload: payload.length ? payload.slice() : payload,
        };
      },
    });
    return answer;
  }

  /**
   * `answerLocally`, with the reply handed to `sink` instead of returned as a `Reply`
   * object (PB1). Returns false, having called nothing, for a request that must go
   * through the order.
   */
  answerLocallyTo(node: NodeId, request: DmUlogRequest, sink: ReplySink): boolean {
    const type = maskRequestType(request.requestType);
    if (!LOCAL_READ_ONLY.has(type) || !isRequestType(type)) return false;
    const header: RequestHeader = request;
    const sizeError = checkRequestPayloadSize(type, request.data.length);
    const state = this.#state;
    let outcome: Outcome;
    if (sizeError !== 0) outcome = { error: sizeError };
    else {
      // The handler may answer with a shared payload: the sink copies it (`ReplySink`).
      const outer = state.sink;
      state.sink = sink;
      try {
        outcome = HANDLERS[type](state, { node, header, data: request.data });
      } finally {
        state.sink = outer;
      }
    }
    if (outcome === DEFERRED) return false;
    sink.reply(
      node,
      header,
      "full",
      this.#unknownLogError(node, header, type, outcome.error),
      outcome.error === 0 && outcome.payload ? outcome.payload : NO_PAYLOAD,
    );
    return true;
  }

  #request(node: NodeId, request: DmUlogRequest): void {
    const state = this.#state;
    state.nodes.add(node);
    const header: RequestHeader = request;
    const type = maskRequestType(request.requestType); // [REC] spec §1.2
    if (type === 0) {
      // "Bad transmission": a bare NACK with EAGAIN makes the kernel resend (spec §1.1).
      state.emitReply(node, header, replyForm(type), -EAGAIN, NO_PAYLOAD);
      return;
    }
    if (!isRequestType(type)) {
      // [REC] pitfall P22: cmirrord never answers, and the kernel retries forever.
      state.reply(node, header, -EINVAL);
      return;
    }
    const sizeError = checkRequestPayloadSize(type, request.data.length);
    const req: RequestContext = { node, header, data: request.data };
    const outcome = sizeError !== 0 ? { error: sizeError } : HANDLERS[type](state, req);
    if (type === DM_ULOG_CLEAR_REGION) {
      // cmirrord ACKs CLEAR before distributing it; its outcome never reaches the kernel
      // (spec §2.11, scenario 12).
      state.emitReply(node, header, replyForm(type), 0, NO_PAYLOAD);
      return;
    }
    if (outcome !== DEFERRED) {
      state.reply(
        node,
        header,
        this.#unknownLogError(node, header, type, outcome.error),
        outcome.payload,
      );
    }
  }

  /** `esrchForUnknownLog`: a wrapped request for a log this node never constructed → -ESRCH. */
  #unknownLogError(node: NodeId, header: RequestHeader, type: number, error: number): number {
    if (error !== -EINVAL && error !== -ENOENT) return error;
    if (!this.#state.options.esrchForUnknownLog || !isEsrchWrapped(type)) return error;
    return this.#state.findInstance(node, header.uuid, header.luid) ? error : -ESRCH;
  }

  #ioDone(ioId: number, error: number, data: Uint8Array | null): void {
    const state = this.#state;
    const io = state.pendingIo.get(ioId);
    if (!io) return; // stale or duplicate completion (P2)
    // I/O of this log held behind this one on another node may go now (`ioHeld`).
    const held = state.heldIo(io.uuid);
    state.pendingIo.delete(ioId);
    this.#completed(io, error, data);
    state.releaseIo(io.uuid, held);
  }

  #completed(io: PendingIo, error: number, data: Uint8Array | null): void {
    const state = this.#state;
    const ioId = io.ioId;
    const group = state.groups.get(io.uuid);
    const answerAll = (err: number) => {
      for (const w of io.waiters) state.reply(w.node, w.header, err);
    };
    if (io.kind === "read") {
      if (group?.loading) masterResumeRead(state, group, error === 0 ? data : null, io.waiters);
      else answerAll(-EAGAIN); // the group vanished meanwhile: let the kernel resend
      return;
    }
    if (group && group.lastWriteIo === ioId) group.lastWriteIo = NO_IO;
    if (error !== 0) {
      // spec §2.9: a failed write sets log_dev_failed (never cleared until a new CTR).
      const writer = group ? state.memberInstance(group, io.node) : null;
      if (writer) writer.logDevFailed = true;
      if (group) syncServerHealth(state, group);
    }
    if (io.purpose === "resume" && group?.loading) {
      masterResumeDone(state, group, error, io.waiters);
      return;
    }
    answerAll(error === 0 ? 0 : -EIO);
  }

  /**
   * An agent left or was declared failed: its logs leave every group at this point of the
   * total order ([REC] spec §4.5, pitfalls P24, P25), its kernel's instances are forgotten
   * (it re-constructs after -ESRCH, §1.5), its pending replies are dropped and I/O it owed
   * moves to the new server.
   */
  #nodeDown(node: NodeId): void {
    const state = this.#state;
    state.nodes.delete(node);
    const requeue: LogGroup["waitingResumes"][] = [];
    const madeOutOfSync: LogGroup[] = [];
    for (const uuid of state.sortedGroupIds()) {
      const group = state.groups.get(uuid)!;
      if (group.members.some((m) => m.node === node)) {
        const outOfSync = releaseMember(group, node, false);
        if (outOfSync.length > 0 && group.members.length > 0) madeOutOfSync.push(group);
        for (const m of group.members) {
          const inst = state.memberInstance(group, m.node);
          if (inst) inst.inSync = false; // §4.5 [REC]: reset in_sync on the survivors
        }
        if (group.members.length > 0) syncServerHealth(state, group);
      }
      const waiting = group.waitingResumes.filter((w) => w.node !== node);
      group.waitingResumes.length = 0;
      if (group.members.length === 0) {
        state.groups.delete(uuid);
        if (waiting.length > 0) requeue.push(waiting);
      } else {
        group.waitingResumes.push(...waiting);
      }
    }
    for (const key of [...state.instances.keys()].sort()) {
      if (state.instances.get(key)!.node === node) state.instances.delete(key);
    }
    // Retained bits outlive a suspend, not the node's tables.
    for (const [uuid, retained] of [...state.retained]) {
      if (retained.node === node) state.retained.delete(uuid);
    }
    // I/O it owed moves to the new server, and I/O held behind it may go: each emitted
    // once it is held behind nothing on another node (`ioHeld`), in ioId order.
    const release = new Map<string, Set<number>>();
    for (const io of state.pendingIo.values()) {
      if (!release.has(io.uuid)) release.set(io.uuid, state.heldIo(io.uuid));
    }
    for (const io of [...state.pendingIo.values()]) {
      if (this.#reassignIo(io, node)) release.get(io.uuid)!.add(io.ioId);
    }
    for (const [uuid, candidates] of [...release].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      state.releaseIo(uuid, candidates);
    }
    // Regions it had marked are out of sync now; the disk must say so before IN_SYNC does.
    for (const group of madeOutOfSync) issueOutOfSyncWrite(state, group);
    // Joiners that were waiting on a master resume whose master died resume afresh.
    for (const resumes of requeue) {
      for (const w of resumes)
        this.#request(w.node, { ...w.header, error: 0, data: new Uint8Array(0) });
    }
  }

  /** Move `failed`'s pending I/O to the new server; true if it moved (the caller emits it). */
  #reassignIo(io: PendingIo, failed: NodeId): boolean {
    const state = this.#state;
    const kept = io.waiters.filter((w) => w.node !== failed);
    io.waiters.length = 0;
    io.waiters.push(...kept);
    if (io.node !== failed) return false;
    const group = state.groups.get(io.uuid);
    const server = group ? state.serverInstance(group) : null;
    if (!group || !server || io.kind === "read") {
      state.pendingIo.delete(io.ioId);
      if (group && group.lastWriteIo === io.ioId) group.lastWriteIo = NO_IO;
      for (const w of io.waiters) state.reply(w.node, w.header, -EIO);
      return false;
    }
    io.node = server.node;
    return true;
  }

  /**
   * Why a CTR with these arguments from `node` fails under the region and log limits
   * (issue 15), or null: for the server's log line. Changes nothing.
   */
  explainCtrLimit(node: NodeId, data: Uint8Array): string | null {
    const parsed = parseCtr(data, { cmirrordQuirks: this.#state.options.cmirrordQuirks });
    if (!parsed.ok) return null;
    return ctrLimitRefusal(this.#state, node, parsed.value.config)?.message ?? null;
  }

  /** Serialise everything replicas agree on (spec §4.3 checkpoint, plus P26/P27). */
  snapshot(): Uint8Array {
    return encodeSnapshot(this.#state);
  }

  /**
   * The same snapshot, made a bounded amount at a time (issue 15): the bitmaps' bytes are
   * copied by the job's `step` (or copy-on-write when a later operation changes them), so
   * the caller can spread a large one over many event-loop turns and go on applying
   * operations meanwhile. Its bytes are exactly `snapshot()`'s at this position.
   */
  beginSnapshot(options: SnapshotJobOptions = {}): SnapshotJob {
    return beginSnapshot(this.#state, options);
  }

  /**
   * Take over a snapshot: only a fresh replica may, and only once — a second checkpoint
   * would erase operations applied after the first (lvm2 f0be9ac90, pitfall P16).
   */
  adoptSnapshot(bytes: Uint8Array): Result<void, SnapshotError | "already-initialised"> {
    if (this.#adopted || this.#state.position !== 0) {
      return {
        ok: false,
        error: { code: "already-initialised", message: "replica already has state" },
      };
    }
    const decoded = decodeSnapshot(bytes, this.#state.options);
    if (!decoded.ok) return decoded;
    this.#state = decoded.value;
    this.#adopted = true;
    return { ok: true, value: undefined };
  }

  static fromSnapshot(
    bytes: Uint8Array,
    options: ClusterLogOptions = {},
  ): Result<ClusterLog, SnapshotError | "already-initialised"> {
    const log = new ClusterLog(options);
    const adopted = log.adoptSnapshot(bytes);
    return adopted.ok ? { ok: true, value: log } : adopted;
  }
}
