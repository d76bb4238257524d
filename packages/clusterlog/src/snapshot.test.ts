import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { performLogIo } from "./block-device.ts";
import { ClusterLog } from "./cluster-log.ts";
import { encodeAscii, encodeSetRegionSync, encodeU64, encodeU64List } from "./codec.ts";
import { makeRequest } from "./local-driver.ts";
import { MemoryBlockDevice } from "./memory-block-device.ts";
import type { ApplyResult, Operation } from "./operations.ts";
import * as T from "./request-types.ts";
import type { SnapshotJob } from "./snapshot.ts";
import { A, B, Harness } from "./test-support.ts";

const CTRS = [
  "40960 clustered-core 1024",
  "40960 clustered-core 1024 nosync",
  "65536 clustered-disk 7:0 1024",
  "65536 clustered-disk 7:0 1024 sync block_on_error",
];
const UUIDS = ["LVM-one", "LVM-two"];

type Cmd =
  | {
      k: "req";
      node: number;
      type: number;
      uuid: number;
      luid: number;
      ctr: number;
      nul: boolean;
      regions: number[];
      flag: boolean;
    }
  | { k: "node"; kind: "node-join" | "node-leave" | "node-failed"; node: number }
  | { k: "disk"; fail: boolean }
  | {
      k: "resync";
      action: "start" | "cancel" | "pause" | "unpause";
      uuid: number;
      id: number;
      first: number;
      span: number;
    };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record({
      k: fc.constant("req" as const),
      node: fc.integer({ min: 1, max: 3 }),
      // Lifecycle requests twice as likely, so logs actually get resumed.
      type: fc.oneof(fc.integer({ min: 0, max: 18 }), fc.constantFrom(1, 5, 1, 5, 10, 9, 12, 13)),
      uuid: fc.nat(1),
      luid: fc.nat(1),
      ctr: fc.nat(CTRS.length - 1),
      nul: fc.boolean(),
      regions: fc.array(fc.nat(70), { maxLength: 4 }),
      flag: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("node" as const),
      kind: fc.constantFrom("node-join" as const, "node-leave" as const, "node-failed" as const),
      node: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("disk" as const), fail: fc.boolean() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("resync" as const),
      action: fc.constantFrom(
        "start" as const,
        "start" as const,
        "cancel" as const,
        "pause" as const,
        "unpause" as const,
      ),
      uuid: fc.nat(1),
      id: fc.nat(1),
      first: fc.nat(70),
      span: fc.nat(40),
    }),
  },
);

function toOperation(c: Cmd & { k: "req" }, seq: number): Operation {
  let data: Uint8Array = new Uint8Array(0);
  const region = c.regions[0] ?? 0;
  if (c.type === T.DM_ULOG_CTR) data = encodeAscii(CTRS[c.ctr]!, c.nul);
  else if ([7, 8, 17].includes(c.type)) data = encodeU64(region);
  else if ([10, 11].includes(c.type) || (c.type === 9 && c.flag)) data = encodeU64List(c.regions);
  else if (c.type === T.DM_ULOG_SET_REGION_SYNC) data = encodeSetRegionSync(region, c.flag);
  return {
    kind: "request",
    node: c.node,
    request: makeRequest({
      node: c.node,
      type: c.type,
      uuid: UUIDS[c.uuid]!,
      luid: BigInt(c.luid + 1),
      seq,
      data,
    }),
  };
}

describe("snapshots and replication (spec §4.3, [REC] P16, P17, P26, P27)", () => {
  it("two replicas, one joining mid-way from a snapshot, stay byte-identical", () => {
    fc.assert(
      fc.property(
        fc.array(cmd, { minLength: 80, maxLength: 200 }),
        fc.nat(200),
        (cmds, splitAt) => {
          const device = new MemoryBlockDevice();
          const first = new ClusterLog();
          let second: ClusterLog | null = null;
          let seq = 1;
          let step = 0;
          const run = (op: Operation) => {
            const queue = [op];
            while (queue.length > 0) {
              const next = queue.shift()!;
              const r1: ApplyResult = first.apply(next);
              // P30: every error the kernel sees is a negative errno.
              for (const reply of r1.replies) expect(reply.error).toBeLessThanOrEqual(0);
              if (second) {
                expect(second.apply(next)).toEqual(r1);
                expect(second.snapshot()).toEqual(first.snapshot());
              }
              for (const io of r1.io) queue.push(performLogIo(io, device));
            }
          };
          for (const c of cmds) {
            if (step++ === Math.min(splitAt, cmds.length - 1)) {
              const joined = ClusterLog.fromSnapshot(first.snapshot());
              if (!joined.ok) throw new Error(joined.error.message);
              second = joined.value;
              expect(second.position).toBe(first.position);
            }
            if (c.k === "disk") device.failWrites = c.fail;
            else if (c.k === "node") run({ kind: c.kind, node: c.node });
            else if (c.k === "resync") {
              const uuid = UUIDS[c.uuid]!;
              const id = `r${c.id}`;
              run({
                kind: "resync",
                resync:
                  c.action === "start"
                    ? { action: "start", uuid, id, first: c.first, last: c.first + c.span }
                    : { action: c.action, uuid, id },
              });
            } else run(toOperation(c, seq++));
          }
          expect(second).not.toBeNull();
          expect(second!.snapshot()).toEqual(first.snapshot());
        },
      ),
      { numRuns: 60 },
    );
  });

  it("a snapshot made a bit at a time while operations go on has the bytes of its start (issue 15)", () => {
    const job = fc.oneof(
      { weight: 2, arbitrary: fc.record({ k: fc.constant("begin" as const) }) },
      {
        weight: 6,
        arbitrary: fc.record({
          k: fc.constant("step" as const),
          n: fc.integer({ min: 1, max: 16 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ k: fc.constant("abandon" as const) }) },
    );
    fc.assert(
      fc.property(
        fc.array(fc.oneof({ weight: 3, arbitrary: cmd }, { weight: 1, arbitrary: job }), {
          minLength: 60,
          maxLength: 200,
        }),
        (cmds) => {
          const device = new MemoryBlockDevice();
          const log = new ClusterLog();
          const twin = new ClusterLog(); // never snapshotted: the jobs change nothing
          const jobs: { job: SnapshotJob; expected: Uint8Array; abandoned: boolean }[] = [];
          let seq = 1;
          const run = (op: Operation) => {
            const queue = [op];
            while (queue.length > 0) {
              const next = queue.shift()!;
              const r = log.apply(next);
              expect(twin.apply(next)).toEqual(r);
              for (const io of r.io) queue.push(performLogIo(io, device));
            }
          };
          for (const c of cmds) {
            if (c.k === "begin") {
              // 4-byte pieces: the copy-on-write path is taken for nearly every change.
              jobs.push({
                job: log.beginSnapshot({ pieceBytes: 4 }),
                expected: log.snapshot(),
                abandoned: false,
              });
            } else if (c.k === "step") {
              for (const j of jobs) if (!j.abandoned && !j.job.done) j.job.step(c.n);
            } else if (c.k === "abandon") {
              const j = jobs.find((j) => !j.abandoned && !j.job.done);
              if (j) {
                j.job.abandon();
                j.abandoned = true;
              }
            } else if (c.k === "disk") device.failWrites = c.fail;
            else if (c.k === "node") run({ kind: c.kind, node: c.node });
            else if (c.k === "resync") {
              const uuid = UUIDS[c.uuid]!;
              const id = `r${c.id}`;
              run({
                kind: "resync",
                resync:
                  c.action === "start"
                    ? { action: "start", uuid, id, first: c.first, last: c.first + c.span }
                    : { action: c.action, uuid, id },
              });
            } else run(toOperation(c, seq++));
          }
          for (const j of jobs) {
            if (j.abandoned) continue;
            expect(j.job.finish()).toEqual(j.expected);
            const restored = ClusterLog.fromSnapshot(j.job.bytes);
            expect(restored.ok && restored.value.position).toBe(j.job.position);
          }
          expect(log.snapshot()).toEqual(twin.snapshot());
        },
      ),
      { numRuns: 80 },
    );
  });

  it("a snapshot carries the mark list, resync cursor and priority list (P26, P27)", () => {
    const h = new Harness();
    h.up(A, "40960 clustered-core 1024");
    h.up(B, "40960 clustered-core 1024");
    h.mark(A, [12]);
    h.remoteRecovering(B, 33);
    h.resyncWork(A); // takes 33 from the priority list
    h.remoteRecovering(B, 20);
    h.setRegionSync(A, 33, true);
    expect(h.resyncWork(B)).toEqual([1, 20]);
    h.setRegionSync(B, 20, true);
    h.resyncWork(B); // sequential: 0
    const restored = ClusterLog.fromSnapshot(h.log.snapshot());
    if (!restored.ok) throw new Error(restored.error.message);
    const g = restored.value.state.groups.get("LVM-test")!;
    expect(g.markers.get(12)).toEqual([A]);
    expect([g.recoveringRegion, g.recoverer, g.syncSearch]).toEqual([0, B, 1]);
    expect(restored.value.snapshot()).toEqual(h.log.snapshot());
  });

  it("carries an invalidated recovery (§3.5 [REC])", () => {
    const h = new Harness();
    h.up(A, "4096 clustered-core 1024");
    h.up(B, "4096 clustered-core 1024");
    expect(h.resyncWork(B)).toEqual([1, 0]);
    h.mark(A, [0]); // a write marked during B's recovery of region 0
    const group = h.log.state.groups.get("LVM-test")!;
    expect(group.recoveryInvalidated).toBe(true);
    const withFlag = h.log.snapshot();
    const restored = ClusterLog.fromSnapshot(withFlag);
    if (!restored.ok) throw new Error(restored.error.message);
    expect(restored.value.state.groups.get("LVM-test")!.recoveryInvalidated).toBe(true);
    expect(restored.value.snapshot()).toEqual(withFlag);
  });

  // Bytes written by version 3 (before the hint guard) for: A and B up on a 4-region core
  // log, B recovering region 0; the second with B's recovery invalidated.
  const V3 =
    "4d50434c0300000000050000000000000001000000000000000200000001000000020000000200000001000000080000004c564d2d746573741111000000000000180000003430393620636c757374657265642d636f7265203130323401000000000000000000000002000000080000004c564d2d746573741111000000000000180000003430393620636c757374657265642d636f7265203130323401000000000000000000000001000000080000004c564d2d74657374040000000000000000020000000100000011110000000000000200000011110000000000000100000000010000000000000000000000000000000002000000010000000000000000000000000000ffffffffffffffff000000000000000000";
  const V3_INVALIDATED =
    "4d50434c0300000000050000000000000001000000000000000200000001000000020000000200000001000000080000004c564d2d746573741111000000000000180000003430393620636c757374657265642d636f7265203130323401000000000000000000000002000000080000004c564d2d746573741111000000000000180000003430393620636c757374657265642d636f7265203130323401000000000000000000000001000000080000004c564d2d74657374040000000000000000020000000100000011110000000000000200000011110000000000000100000000010000000000000000000000000000000002000000010000000000000001000000000000ffffffffffffffff000000000000000000";

  it("reads version 3 snapshots: every kernel's hint taken as rc (the safe side)", () => {
    const old = ClusterLog.fromSnapshot(Buffer.from(V3, "hex"));
    if (!old.ok) throw new Error(old.error.message);
    const state = old.value.state;
    expect([...state.instances.values()].map((i) => i.hintBound)).toEqual([4, 4]);
    expect(state.groups.get("LVM-test")!.staleHints.size).toBe(0);
    // The same state built today, with the hints the old version could not record.
    const h = new Harness();
    h.up(A, "4096 clustered-core 1024");
    h.up(B, "4096 clustered-core 1024");
    h.resyncWork(B);
    for (const inst of h.log.state.instances.values()) inst.hintBound = 4;
    expect(old.value.snapshot()).toEqual(h.log.snapshot());
  });

  it("reads version 2 snapshots (no invalidation flag: read as false)", () => {
    // Version 2 had no flag byte: drop the one byte that differs between the two v3 images.
    const before = Buffer.from(V3, "hex");
    const flagged = Buffer.from(V3_INVALIDATED, "hex");
    const diff = [...before.keys()].filter((i) => before[i] !== flagged[i]);
    expect(diff.length).toBe(1);
    const v2 = Uint8Array.from([...before.subarray(0, diff[0]), ...before.subarray(diff[0]! + 1)]);
    new DataView(v2.buffer).setUint32(4, 2, true);
    const old = ClusterLog.fromSnapshot(v2);
    if (!old.ok) throw new Error(old.error.message);
    expect(old.value.state.groups.get("LVM-test")!.recoveryInvalidated).toBe(false);
    const v3 = ClusterLog.fromSnapshot(before);
    if (!v3.ok) throw new Error(v3.error.message);
    expect(old.value.snapshot()).toEqual(v3.value.snapshot());
  });

  it("P17 [REC]: a snapshot records its stream position, so a joiner can tell its age", () => {
    const h = new Harness();
    h.up(A, "4096 clustered-core 1024");
    const early = h.log.snapshot();
    h.mark(A, [1]);
    const late = ClusterLog.fromSnapshot(h.log.snapshot());
    const old = ClusterLog.fromSnapshot(early);
    if (!late.ok || !old.ok) throw new Error("snapshot");
    expect(late.value.position).toBe(h.log.position);
    expect(old.value.position).toBeLessThan(late.value.position);
  });

  it("rejects corrupt or truncated snapshots with a typed error, never a throw", () => {
    const h = new Harness();
    h.up(A, "2097152 clustered-disk 7:0 1024");
    h.mark(A, [1]);
    const snap = h.log.snapshot();
    fc.assert(
      fc.property(fc.nat(snap.length - 1), (cut) => {
        const r = ClusterLog.fromSnapshot(snap.subarray(0, cut));
        expect(r).toMatchObject({ ok: false, error: { code: "bad-snapshot" } });
      }),
    );
    expect(ClusterLog.fromSnapshot(snap, { cmirrordQuirks: true }).ok).toBe(false);
  });
});
