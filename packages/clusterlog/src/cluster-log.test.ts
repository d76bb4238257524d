import { describe, expect, it } from "vitest";
import { ClusterLog } from "./cluster-log.ts";
import { decodePair64, decodeU64, encodeAscii, encodeU64, encodeU64List } from "./codec.ts";
import { makeRequest } from "./local-driver.ts";
import type { NodeId } from "./operations.ts";
import * as T from "./request-types.ts";
import { A, B, C, Harness, L1, U } from "./test-support.ts";

const CORE = "40960 clustered-core 1024"; // 40 regions
const DISK = "2097152 clustered-disk 7:0 1024";

let seq = 1000;
function req(node: NodeId, type: number, data: Uint8Array = new Uint8Array(0), luid = L1) {
  return {
    kind: "request" as const,
    node,
    request: makeRequest({ node, type, uuid: U, luid, seq: seq++, data }),
  };
}

describe("request dispatch", () => {
  it("P22: type 0 gets a bare EAGAIN NACK; an unknown type gets -EINVAL (cmirrord never answers)", () => {
    const log = new ClusterLog();
    const zero = log.apply(req(A, 0));
    expect(zero.replies).toMatchObject([{ form: "ack", error: -11 }]);
    const unknown = log.apply(req(A, 18));
    expect(unknown.replies).toMatchObject([{ form: "full", error: -22 }]);
    expect(unknown.replies[0]?.payload.length).toBe(0);
  });

  it("[REC] §1.2: the request type is masked to its low 8 bits", () => {
    const h = new Harness();
    h.up(A, CORE);
    const reply = h.send(A, 0x1000 | T.DM_ULOG_GET_SYNC_COUNT);
    expect([reply.error, reply.payload.length]).toEqual([0, 8]);
  });

  it("answerLocally serves IN_SYNC & co. from the replica without changing it (spec §4.2)", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.setRegionSync(A, 3, true);
    const before = h.log.snapshot();
    const inSync = makeRequest({
      node: A,
      type: T.DM_ULOG_IN_SYNC,
      uuid: U,
      luid: L1,
      seq: 1,
      data: encodeU64(3),
    });
    const local = h.log.answerLocally(A, inSync);
    expect(local && decodeU64(local.payload)).toBe(1);
    expect(h.log.snapshot()).toEqual(before);
    const count = makeRequest({
      node: A,
      type: T.DM_ULOG_GET_SYNC_COUNT,
      uuid: U,
      luid: L1,
      seq: 2,
    });
    expect(h.log.answerLocally(A, count)).toEqual(
      h.log.apply({ kind: "request", node: A, request: count }).replies[0],
    );
    const mark = makeRequest({ node: A, type: T.DM_ULOG_MARK_REGION, uuid: U, luid: L1, seq: 3 });
    expect(h.log.answerLocally(A, mark)).toBeNull();
  });

  it("P2: a stale or duplicate io-done is ignored", () => {
    const log = new ClusterLog();
    expect(log.apply({ kind: "io-done", ioId: 77, error: 0 })).toEqual({ replies: [], io: [] });
  });
});

describe("cluster coherence (spec §4)", () => {
  it("scenario 21: exclusive recovery; replicas agree on sync_count", () => {
    const r1 = new ClusterLog();
    const r2 = new ClusterLog();
    const both = (op: ReturnType<typeof req>) => {
      const a = r1.apply(op);
      expect(r2.apply(op)).toEqual(a);
      return a.replies[0]!;
    };
    for (const n of [A, B]) {
      both(req(n, T.DM_ULOG_CTR, encodeAscii(CORE)));
      both(req(n, T.DM_ULOG_RESUME));
    }
    const work = (n: NodeId) => decodePair64(both(req(n, T.DM_ULOG_GET_RESYNC_WORK)).payload);
    const first = work(A);
    expect(first.first).toBe(1);
    expect(work(B).first).toBe(0);
    const payload = new Uint8Array(16);
    payload.set(encodeU64(first.second));
    payload[8] = 1;
    both(req(A, T.DM_ULOG_SET_REGION_SYNC, payload));
    const next = work(B);
    expect(next).toEqual({ first: 1, second: first.second + 1 });
    for (const n of [A, B]) {
      expect(decodeU64(both(req(n, T.DM_ULOG_GET_SYNC_COUNT)).payload)).toBe(1);
    }
  });

  it("scenario 22 / P16 / P26: a joiner starts from a snapshot incl. marks; a second one is refused", () => {
    const h = new Harness();
    h.up(A, CORE);
    for (let r = 0; r < 10; r++) h.setRegionSync(A, r, true);
    for (let r = 20; r < 21; r++) h.setRegionSync(A, r, true);
    h.clear(A, [20]);
    h.mark(A, [20]);
    h.driver.submit({ kind: "node-join", node: B });
    const snap = h.log.snapshot();
    const joined = ClusterLog.fromSnapshot(snap);
    if (!joined.ok) throw new Error(joined.error.message);
    const replicaB = joined.value;
    for (const op of [req(B, T.DM_ULOG_CTR, encodeAscii(CORE)), req(B, T.DM_ULOG_RESUME)]) {
      expect(replicaB.apply(op)).toEqual(h.log.apply(op));
    }
    const ask = (type: number, data?: Uint8Array) => {
      const op = req(B, type, data);
      const answer = replicaB.apply(op);
      expect(h.log.apply(op)).toEqual(answer);
      return decodeU64(answer.replies[0]!.payload);
    };
    expect(ask(T.DM_ULOG_IN_SYNC, encodeU64(5))).toBe(1);
    expect(ask(T.DM_ULOG_GET_SYNC_COUNT)).toBe(11);
    // B clears 20, but A still has it marked: it must stay dirty (P26).
    replicaB.apply(req(B, T.DM_ULOG_CLEAR_REGION, encodeU64List([20])));
    expect(ask(T.DM_ULOG_IS_CLEAN, encodeU64(20))).toBe(0);
    expect(replicaB.adoptSnapshot(snap)).toMatchObject({
      ok: false,
      error: { code: "already-initialised" },
    });
  });

  it("scenario 23: a request resent after the server leaves gets the same answer from the new server", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.up(B, CORE);
    const group = h.log.state.groups.get(U)!;
    expect(group.members[0]?.node).toBe(A);
    const first = h.send(B, T.DM_ULOG_GET_RESYNC_WORK, undefined, { seq: 5000 });
    h.postsuspend(A);
    expect(h.log.state.groups.get(U)!.members[0]?.node).toBe(B);
    const resent = h.send(B, T.DM_ULOG_GET_RESYNC_WORK, undefined, { seq: 5000 });
    expect(resent).toEqual(first);
  });

  it("[REC] §4.5 / P24 / P25: a failed node's marks become out of sync and its recovery slot is freed", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.up(B, CORE);
    for (let r = 0; r < 40; r++) if (r !== 30) h.setRegionSync(A, r, true);
    h.clear(A, [...Array(40).keys()]);
    expect(h.resyncWork(A)).toEqual([1, 30]); // A recovers 30
    h.mark(A, [3, 5]);
    h.mark(B, [5]);
    // Full sync reached once → B's sticky in_sync would hide the damage; it is reset.
    h.driver.submit({ kind: "node-failed", node: A });
    const group = h.log.state.groups.get(U)!;
    expect(group.members.map((m) => m.node)).toEqual([B]);
    expect(h.inSync(B, 3)).toBe(0);
    expect(h.inSync(B, 4)).toBe(1);
    expect(h.inSync(B, 5)).toBe(0);
    expect(h.syncCount(B)).toBe(37);
    expect(h.isClean(B, 5)).toBe(0);
    expect(h.resyncWork(B)).toEqual([1, 30]); // slot released, 30 queued first
    h.setRegionSync(B, 30, true);
    expect(h.resyncWork(B)).toEqual([1, 3]);
    h.setRegionSync(B, 3, true);
    expect(h.resyncWork(B)).toEqual([1, 5]);
    h.setRegionSync(B, 5, true);
    h.clear(B, [3, 5]);
    expect(h.isClean(B, 5)).toBe(1); // A's mark no longer pins it dirty (P25)
    expect([...h.log.state.instances.values()].every((i) => i.node !== A)).toBe(true);
  });

  it("POSTSUSPEND releases the node's marks like clears (no resync needed)", () => {
    const h = new Harness();
    h.up(A, CORE);
    h.up(B, CORE);
    h.setRegionSync(A, 2, true);
    h.mark(B, [2]);
    expect(h.isClean(A, 2)).toBe(0);
    h.postsuspend(B);
    expect(h.isClean(A, 2)).toBe(1);
    expect(h.inSync(A, 2)).toBe(1);
  });

  it("a joiner's RESUME during a master resume waits for the disk, then joins", () => {
    const log = new ClusterLog();
    log.apply(req(A, T.DM_ULOG_CTR, encodeAscii(DISK)));
    log.apply(req(B, T.DM_ULOG_CTR, encodeAscii(DISK)));
    const resumeA = log.apply(req(A, T.DM_ULOG_RESUME));
    expect(resumeA.replies).toEqual([]);
    expect(resumeA.io).toMatchObject([{ kind: "read", node: A, logDevice: "7:0" }]);
    expect(log.apply(req(A, T.DM_ULOG_GET_RESYNC_WORK)).replies[0]?.error).toBe(-11);
    const resumeB = log.apply(req(B, T.DM_ULOG_RESUME));
    expect(resumeB.replies).toEqual([]);
    const read = log.apply({ kind: "io-done", ioId: resumeA.io[0]!.ioId, error: -5 });
    expect(read.io).toMatchObject([{ kind: "write", node: A }]);
    const written = log.apply({ kind: "io-done", ioId: read.io[0]!.ioId, error: 0 });
    expect(written.replies.map((r) => [r.node, r.error])).toEqual([
      [A, 0],
      [B, 0],
    ]);
    expect(log.state.groups.get(U)?.members.map((m) => m.node)).toEqual([A, B]);
  });

  it("a joiner waiting on a master that fails becomes the master itself", () => {
    const log = new ClusterLog();
    log.apply(req(A, T.DM_ULOG_CTR, encodeAscii(DISK)));
    log.apply(req(B, T.DM_ULOG_CTR, encodeAscii(DISK)));
    const resumeA = log.apply(req(A, T.DM_ULOG_RESUME));
    log.apply(req(B, T.DM_ULOG_RESUME));
    const failed = log.apply({ kind: "node-failed", node: A });
    expect(failed.io).toMatchObject([{ kind: "read", node: B }]);
    expect(log.apply({ kind: "io-done", ioId: resumeA.io[0]!.ioId, error: 0 })).toEqual({
      replies: [],
      io: [],
    });
  });

  it("a log write owed by a failed server moves to the new server", () => {
    const log = new ClusterLog();
    for (const n of [A, B, C]) log.apply(req(n, T.DM_ULOG_CTR, encodeAscii(DISK)));
    const r = log.apply(req(A, T.DM_ULOG_RESUME));
    const w = log.apply({ kind: "io-done", ioId: r.io[0]!.ioId, error: 0 });
    log.apply({ kind: "io-done", ioId: w.io[0]!.ioId, error: 0 });
    log.apply(req(B, T.DM_ULOG_RESUME));
    log.apply(req(C, T.DM_ULOG_RESUME));
    const sync7 = new Uint8Array(16);
    sync7.set(encodeU64(7));
    sync7[8] = 1;
    log.apply(req(C, T.DM_ULOG_SET_REGION_SYNC, sync7));
    log.apply(req(C, T.DM_ULOG_CLEAR_REGION, encodeU64List([7])));
    const flush = log.apply(req(C, T.DM_ULOG_FLUSH, encodeU64List([7])));
    expect(flush.io).toMatchObject([{ kind: "write", node: A }]);
    const failed = log.apply({ kind: "node-failed", node: A });
    expect(failed.io).toMatchObject([{ kind: "write", node: B, ioId: flush.io[0]!.ioId }]);
    const done = log.apply({ kind: "io-done", ioId: flush.io[0]!.ioId, error: 0 });
    expect(done.replies.map((x) => [x.node, x.error])).toEqual([[C, 0]]);
  });
});
