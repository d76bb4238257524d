import type { RequestHeader } from "./codec.ts";
import { encodeLogImage, logImageSize } from "./disk-format.ts";
import { EAGAIN } from "./errno.ts";
import type { LogGroup, LogInstance, PendingReply } from "./log-state.ts";
import { NO_IO, serverOf } from "./log-state.ts";
import type { IoRequest, NodeId, Reply } from "./operations.ts";

// Everything one replica holds, plus the output buffers of the operation being applied.
// Iteration that can influence output goes through sorted keys, so a replica restored from
// a snapshot (maps rebuilt in sorted order) behaves exactly like the one that built its
// maps in operation order.

export interface ClusterLogOptions {
  /**
   * Reproduce cmirrord where the spec's [REC] differs and a conformance scenario names the
   * cmirrord answer: duplicate CTR → -EINVAL and the device name on every CTR (P4, P5), a
   * core log with region size 0 → -ENOENT (scenario 4), and IS_REMOTE_RECOVERING → {0, rc}
   * while the server is presuspended (P29, scenario 19). Every replica must use the same.
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
}

export interface PendingIo {
  readonly ioId: number;
  readonly kind: "read" | "write";
  readonly uuid: string;
  /** The node doing it; moved to the new server if that node fails. */
  node: NodeId;
  /** "resume": the I/O of a master resume; "flush": a FLUSH commit. */
  readonly purpose: "resume" | "flush";
  readonly waiters: PendingReply[];
}

/**
 * The payload of every reply without one: shared, since a zero-length array cannot be
 * changed (one allocation less per MARK, FLUSH and CLEAR, PERF.md PB1).
 */
export const NO_PAYLOAD = new Uint8Array(0);

export function instanceKey(node: NodeId, uuid: string, luid: bigint): string {
  return `${node}\u0000${luid}\u0000${uuid}`;
}

export class ClusterState {
  readonly options: Required<ClusterLogOptions>;
  readonly nodes = new Set<NodeId>();
  readonly instances = new Map<string, LogInstance>();
  readonly groups = new Map<string, LogGroup>();
  readonly pendingIo = new Map<number, PendingIo>();
  nextIoId = 1;
  /** Operations applied so far: the snapshot's position in the stream (P17 [REC]). */
  position = 0;

  replies: Reply[] = [];
  io: IoRequest[] = [];
  /** The last instance key built, reused while requests keep naming the same log (PB1). */
  #lastKey = { node: -1, uuid: "", luid: -1n, key: "" };

  constructor(options: ClusterLogOptions = {}) {
    this.options = {
      cmirrordQuirks: options.cmirrordQuirks ?? false,
      esrchForUnknownLog: options.esrchForUnknownLog ?? false,
    };
  }

  reply(node: NodeId, header: RequestHeader, error: number, payload?: Uint8Array): void {
    this.replies.push({
      node,
      header,
      form: "full",
      error,
      payload: error === 0 && payload ? payload : NO_PAYLOAD,
    });
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
    this.emitIo(io, group);
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
    this.emitIo(io, group);
  }

  /** (Re-)emit the IoRequest for a pending I/O, with the current image for writes. */
  emitIo(io: PendingIo, group: LogGroup): void {
    const inst = this.memberInstance(group, io.node);
    const logDevice = inst?.config.logDevice ?? "";
    if (io.kind === "read") {
      this.io.push({
        kind: "read",
        ioId: io.ioId,
        node: io.node,
        uuid: io.uuid,
        logDevice,
        length: logImageSize(group.regionCount),
      });
    } else {
      this.io.push({
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
