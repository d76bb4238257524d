import { describe, expect, it } from "vitest";
import { performLogIo } from "./block-device.ts";
import { ClusterLog } from "./cluster-log.ts";
import { decodeU64, encodeAscii, encodeU64, encodeU64List } from "./codec.ts";
import { makeRequest } from "./local-driver.ts";
import { MemoryBlockDevice } from "./memory-block-device.ts";
import type { IoRequest, NodeId, Operation, Reply } from "./operations.ts";
import * as T from "./request-types.ts";

// What the simulator's invariant checker found (docs/KERNEL-BRIDGE.md, "What the simulator
// found"): a write acknowledged while the shared on-disk log still called its region
// clean. Two causes, each driven here by a fixed schedule in which the I/O the core asks
// for is performed only when the test says so, in the worst order the agents could
// produce (each node runs its own I/O in order; nothing orders two nodes' I/O):
//  1. after a server change, the old server's older image landed after the new server's
//     newer one (the new server's write went out while the old one's was still pending);
//  2. a region made out of sync by an ordered operation (an operator resync start, a
//     failed node's marks, §4.5) was answered "not in sync" by IN_SYNC — which lets the
//     kernel write it to the primary leg only, unmarked — before any log write said it
//     was not clean (the start waited for the next FLUSH).

const U = "LVM-durable";
const A = 1;
const B = 2;
const C = 3;
/** 8 regions on a disk log, created in sync (every region clean on disk). */
const TABLE = "8192 clustered-disk 7:0 1024 nosync";
const EAGAIN = -11;

class Cluster {
  readonly log = new ClusterLog();
  readonly disk = new MemoryBlockDevice();
  /** I/O the core handed out and the test has not performed yet, per node, in order. */
  readonly lanes = new Map<NodeId, IoRequest[]>();
  readonly replies: Reply[] = [];
  #seq = 1;

  apply(op: Operation): { replies: Reply[]; io: IoRequest[] } {
    const result = this.log.apply(op);
    this.replies.push(...result.replies);
    for (const io of result.io) {
      const lane = this.lanes.get(io.node) ?? [];
      lane.push(io);
      this.lanes.set(io.node, lane);
    }
    return result;
  }

  request(node: NodeId, type: number, data?: Uint8Array) {
    const seq = this.#seq++;
    const request = makeRequest({ node, type, uuid: U, luid: BigInt(node), seq, data });
    const result = this.apply({ kind: "request", node, request });
    return { seq, result };
  }

  /** Perform the oldest pending I/O of `node` and apply its completion. */
  perform(node: NodeId): void {
    const io = this.lanes.get(node)?.shift();
    if (!io) throw new Error(`node ${node} has no I/O to perform`);
    this.apply(performLogIo(io, this.disk));
  }

  /** Perform everything, newest node lane first (the worst order across nodes). */
  performAll(): void {
    for (;;) {
      const busy = [...this.lanes].filter(([, lane]) => lane.length > 0);
      if (busy.length === 0) return;
      const newest = busy.sort((a, b) => b[1][0]!.ioId - a[1][0]!.ioId)[0]![0];
      this.perform(newest);
    }
  }

  pending(node: NodeId): number {
    return this.lanes.get(node)?.length ?? 0;
  }

  answered(node: NodeId, seq: number): Reply | undefined {
    return this.replies.find((r) => r.node === node && r.header.seq === seq);
  }

  /** CTR + RESUME of `node`, its I/O performed at once. */
  up(node: NodeId): void {
    this.request(node, T.DM_ULOG_CTR, encodeAscii(TABLE));
    const resume = this.request(node, T.DM_ULOG_RESUME);
    this.performAll();
    expect(this.answered(node, resume.seq)?.error).toBe(0);
  }

  /** IN_SYNC as the agent answers it: locally, from the replica (spec §4.2). */
  inSync(node: NodeId, region: number): number {
    const request = makeRequest({
      node,
      type: T.DM_ULOG_IN_SYNC,
      uuid: U,
      luid: BigInt(node),
      seq: this.#seq++,
      data: encodeU64(region),
    });
    const reply = this.log.answerLocally(node, request)!;
    return reply.error === 0 ? decodeU64(reply.payload) : reply.error;
  }

  /** IN_SYNC lets `node`'s kernel write `region` unmarked while the disk calls it clean. */
  unsafe(node: NodeId, region: number): boolean {
    return this.inSync(node, region) === 0 && this.diskClean(region);
  }

  diskClean(region: number): boolean {
    return ((this.disk.data[1024 + (region >> 3)]! >> (region & 7)) & 1) === 1;
  }
}

describe("the on-disk log never calls a region clean that a kernel may write unmarked", () => {
  it("after a server change, a newer image is not written before the old server's older one", () => {
    const c = new Cluster();
    for (const n of [A, B, C]) c.up(n);
    // B's FLUSH of region 5: the server (A) writes the image; its write is slow.
    const flushB = c.request(B, T.DM_ULOG_FLUSH, encodeU64List([5]));
    expect(flushB.result.io).toMatchObject([{ kind: "write", node: A }]);
    // A suspends (its kernel's I/O is done; A's agent still has the write in its lane):
    // B is the server now.
    c.request(A, T.DM_ULOG_PRESUSPEND);
    c.request(A, T.DM_ULOG_POSTSUSPEND);
    expect(c.log.state.groups.get(U)!.members.map((m) => m.node)).toEqual([B, C]);
    // C's FLUSH of region 7 needs a newer image; B must not write it before A's is done.
    const flushC = c.request(C, T.DM_ULOG_FLUSH, encodeU64List([7]));
    // Worst order: whatever B has goes first. C's FLUSH is answered only after its write.
    c.performAll();
    expect(c.answered(C, flushC.seq)?.error).toBe(0);
    expect(c.answered(B, flushB.seq)?.error).toBe(0);
    expect(c.diskClean(5)).toBe(false);
    expect(c.diskClean(7)).toBe(false); // before the fix: A's older image landed last
    expect(c.log.state.pendingIo.size).toBe(0);
    // Every replica agrees on what was held: a snapshot mid-way restores the same state.
    expect(ClusterLog.fromSnapshot(c.log.snapshot()).ok).toBe(true);
  });

  it("a held write whose node left the group goes to the current server", () => {
    const c = new Cluster();
    for (const n of [A, B, C]) c.up(n);
    const flushB = c.request(B, T.DM_ULOG_FLUSH, encodeU64List([5]));
    expect(flushB.result.io).toMatchObject([{ node: A }]);
    // A leaves; B becomes server and its write is held behind A's.
    c.request(A, T.DM_ULOG_PRESUSPEND);
    c.request(A, T.DM_ULOG_POSTSUSPEND);
    const flushC = c.request(C, T.DM_ULOG_FLUSH, encodeU64List([7]));
    expect(c.pending(B)).toBe(0); // held: before the fix B had it at once
    // B leaves too before A's write is done: C is the server, the held write is C's.
    c.request(B, T.DM_ULOG_PRESUSPEND);
    c.request(B, T.DM_ULOG_POSTSUSPEND);
    c.perform(A);
    expect(c.pending(C)).toBe(1);
    c.perform(C);
    expect(c.answered(C, flushC.seq)?.error).toBe(0);
    expect(c.diskClean(7)).toBe(false);
  });

  it("a resync start: IN_SYNC says 'not in sync' only once the disk says 'not clean'", () => {
    const c = new Cluster();
    c.up(A);
    expect(c.inSync(A, 3)).toBe(1);
    expect(c.diskClean(3)).toBe(true);
    const start = c.apply({
      kind: "resync",
      resync: { action: "start", uuid: U, id: "r1", first: 2, last: 4 },
    });
    expect(c.unsafe(A, 3)).toBe(false); // before the fix: IN_SYNC 0, disk clean
    // The start writes the log at once (not at the next FLUSH) ...
    expect(start.io).toMatchObject([{ kind: "write", node: A }]);
    // ... and until that write is durable the kernel is told to ask again.
    expect(c.inSync(A, 3)).toBe(EAGAIN);
    expect(c.inSync(A, 6)).toBe(1); // outside the range: unchanged
    c.perform(A);
    expect(c.diskClean(3)).toBe(false);
    expect(c.inSync(A, 3)).toBe(0);
  });

  it("a failed node's marked regions: 'not in sync' only once the disk says 'not clean'", () => {
    const c = new Cluster();
    c.up(A);
    c.up(B);
    // B marks region 6 and dies before its FLUSH: the disk still calls 6 clean.
    c.request(B, T.DM_ULOG_MARK_REGION, encodeU64List([6]));
    expect(c.diskClean(6)).toBe(true);
    const failed = c.apply({ kind: "node-failed", node: B });
    expect(c.unsafe(A, 6)).toBe(false); // before the fix: IN_SYNC 0, disk clean
    expect(failed.io).toMatchObject([{ kind: "write", node: A }]);
    expect(c.inSync(A, 6)).toBe(EAGAIN);
    c.perform(A);
    expect(c.diskClean(6)).toBe(false);
    expect(c.inSync(A, 6)).toBe(0);
  });
});
