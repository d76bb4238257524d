import { type ApplyResult, MemoryBlockDevice, type NodeId } from "@mirrorplane/clusterlog";
import { NatsServer, natsServerBinary } from "@mirrorplane/simulator/nats-server";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BusReplica } from "../../testing/bus-replica.ts";
import {
  boolAnswer,
  coreLogArgs,
  diskLogArgs,
  KernelRequests,
} from "../../testing/kernel-requests.ts";
import type { OrderedOperation } from "./bus.ts";
import { JetStreamBus } from "./jetstream-bus.ts";
import { ephemeralClusterKeys } from "./member-keys.ts";

// Integration tests against real nats-server processes (the harness starts one per file
// on a free loopback port, with its store in a temporary directory). No timed assertion:
// waits have generous upper bounds and only guard against hanging.

const FAILURE_TIMEOUT_MS = 1_500;
const UUID = "LVM-jetstream-test";

let nats: NatsServer;
let clusterCounter = 0;
/** Every member signs its envelopes; every member trusts every other (issue 15). */
const keys = ephemeralClusterKeys(Array.from({ length: 16 }, (_, i) => i + 1));
const running: JetStreamBus[] = [];

async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Member {
  readonly node: NodeId;
  readonly bus: JetStreamBus;
  readonly replica: BusReplica;
  readonly stream: OrderedOperation[];
  readonly kernel: KernelRequests;
}

class TestCluster {
  readonly name = `t${++clusterCounter}`;
  /** Tests that must see no failure give a loaded CI machine more room than 1.5 s. */
  constructor(readonly failureTimeoutMs = FAILURE_TIMEOUT_MS) {}
  readonly device = new MemoryBlockDevice();
  readonly members = new Map<NodeId, Member>();
  /** Every IS_CLEAN answer of 1 and the regions marked by live members at that point. */
  readonly violations: string[] = [];

  async start(node: NodeId, luid = BigInt(node) * 0x100n): Promise<Member> {
    const bus = new JetStreamBus({
      memberKeys: keys.get(node)!,
      nodeId: node,
      servers: nats.url,
      cluster: this.name,
      failureTimeoutMs: this.failureTimeoutMs,
      heartbeatIntervalMs: 250,
      publishTimeoutMs: 2_000,
    });
    running.push(bus);
    const stream: OrderedOperation[] = [];
    const replica = new BusReplica({
      bus,
      resolveDevice: () => this.device,
      onApplied: (entry: OrderedOperation, _result: ApplyResult) => stream.push(entry),
    });
    await replica.start();
    const member = { node, bus, replica, stream, kernel: new KernelRequests(UUID, luid) };
    this.members.set(node, member);
    return member;
  }

  /** CTR + RESUME on `member` (RESUME is retried on -EAGAIN like the kernel does). */
  async up(member: Member, args: string): Promise<void> {
    const ctr = await member.replica.request(member.kernel.ctr(args));
    expect(ctr.error).toBe(0);
    for (;;) {
      const resume = await member.replica.request(member.kernel.resume());
      if (resume.error === 0) return;
      expect(resume.error).toBe(-11);
    }
  }

  live(): Member[] {
    return [...this.members.values()];
  }

  async settle(): Promise<number> {
    const target = Math.max(...this.live().map((m) => m.bus.deliveredSeq));
    await waitFor("replicas to catch up", () =>
      this.live().every((m) => m.bus.deliveredSeq >= target),
    );
    return target;
  }

  async stop(): Promise<void> {
    for (const m of this.members.values()) await m.bus.close();
    this.members.clear();
  }
}

function groupOf(member: Member) {
  const group = member.replica.log.state.groups.get(UUID);
  if (!group) throw new Error(`node ${member.node} has no group ${UUID}`);
  return group;
}

function failuresOf(stream: readonly OrderedOperation[], node: NodeId): OrderedOperation[] {
  return stream.filter((e) => e.op.kind === "node-failed" && e.op.node === node);
}

function expectAllAnsweredOnce(...members: Member[]): void {
  for (const m of members) {
    expect(m.replica.outstanding).toBe(0);
    for (const [, count] of m.replica.answers) expect(count).toBe(1);
  }
}

describe.skipIf(natsServerBinary() === null)("JetStreamBus against nats-server", () => {
  beforeAll(async () => {
    nats = await NatsServer.start();
  });
  afterEach(async () => {
    for (const bus of running.splice(0)) await bus.abort().catch(() => {});
  });
  afterAll(async () => {
    await nats?.stop();
  });

  it("delivers one identical order to three members, each publishing concurrently", async () => {
    const cluster = new TestCluster();
    const members = [await cluster.start(1), await cluster.start(2), await cluster.start(3)];
    await Promise.all(members.map((m) => cluster.up(m, coreLogArgs(64, "nosync"))));
    // Each node marks, flushes and clears its own regions, all at once.
    await Promise.all(
      members.map(async (m) => {
        const work: Promise<unknown>[] = [];
        for (let i = 0; i < 20; i++) {
          const region = m.node * 20 + (i % 20);
          work.push(m.replica.request(m.kernel.mark([region % 64])));
          work.push(m.replica.request(m.kernel.flush()));
          work.push(m.replica.request(m.kernel.clear([region % 64])));
        }
        await Promise.all(work);
      }),
    );
    await cluster.settle();
    const order = (m: Member) => m.stream.map((e) => `${e.seq}/${e.msgId}`);
    // Members 2 and 3 joined later: compare the common suffix of the stream.
    const from = members[2]!.stream[0]!.seq;
    const tail = (m: Member) => order(m).filter((_, i) => m.stream[i]!.seq >= from);
    expect(tail(members[0]!)).toEqual(tail(members[2]!));
    expect(tail(members[1]!)).toEqual(tail(members[2]!));
    for (const m of members) {
      const seqs = m.stream.map((e) => e.seq);
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i)); // no gap, no repeat
    }
    const bytes = members.map((m) => Buffer.from(m.replica.log.snapshot()).toString("hex"));
    expect(bytes[1]).toBe(bytes[0]);
    expect(bytes[2]).toBe(bytes[0]);
    expectAllAnsweredOnce(...members);
    await cluster.stop();
  });

  it("applies a re-published message id once", async () => {
    const cluster = new TestCluster();
    const a = await cluster.start(1);
    const b = await cluster.start(2);
    await cluster.up(a, coreLogArgs(16, "nosync"));
    const request = a.kernel.mark([3]);
    const op = { kind: "request", node: 1, request } as const;
    const failed: unknown[] = [];
    const onFailed = (error: unknown) => failed.push(error);
    // Two members racing with one id, then the first again: the stream keeps one.
    a.bus.publish(op, "dup-", 1, onFailed);
    b.bus.publish(op, "dup-", 1, onFailed);
    await waitFor("dup-1 delivered", () => a.stream.some((e) => e.msgId === "dup-1"));
    a.bus.publish(op, "dup-", 1, onFailed);
    await cluster.settle();
    expect(failed).toEqual([]);
    for (const m of [a, b]) expect(m.stream.filter((e) => e.msgId === "dup-1")).toHaveLength(1);
    await cluster.stop();
  });

  it("declares a killed disk-writing member failed once, by the lowest survivor", async () => {
    const cluster = new TestCluster();
    const a = await cluster.start(1);
    const b = await cluster.start(2);
    const c = await cluster.start(3);
    for (const m of [a, b, c]) await cluster.up(m, diskLogArgs(64, "7:0", "nosync"));
    // Node 1 (the server: it writes the disk log) holds marks on 5 and 6; node 2 on 7.
    expect((await a.replica.request(a.kernel.flush([5, 6]))).error).toBe(0);
    expect((await b.replica.request(b.kernel.flush([7]))).error).toBe(0);
    const writesBefore = cluster.device.writeCount;
    expect(writesBefore).toBeGreaterThan(0);

    await a.bus.abort(); // like kill -9: no leave, the heartbeat key expires
    cluster.members.delete(1);
    await waitFor("node 1 declared failed", () =>
      [b, c].every((m) => !m.bus.members().some((x) => x.node === 1)),
    );
    await cluster.settle();
    for (const m of [b, c]) {
      const failures = failuresOf(m.stream, 1);
      expect(failures).toHaveLength(1);
      expect(failures[0]!.origin).toBe(2);
      // spec §4.5 [REC]: node 1's regions are out of sync, node 2's mark is kept.
      const group = groupOf(m);
      expect(group.syncBits.test(5)).toBe(false);
      expect(group.syncBits.test(6)).toBe(false);
      expect(group.markers.get(7)).toEqual([2]);
      expect(group.members.map((x) => x.node)).toEqual([2, 3]);
    }
    expect(boolAnswer(await c.replica.request(c.kernel.isClean(7)))).toBe(0);
    // Node 2 is now the server: a new mark is flushed by it.
    expect((await c.replica.request(c.kernel.flush([9]))).error).toBe(0);
    expect(cluster.device.writeCount).toBeGreaterThan(writesBefore);
    // Node 3's kernel saw the full sync count (hint rc): nothing is handed out until its
    // agent re-arms it with a suspend/resume (hint guard).
    const held = await b.replica.request(b.kernel.getResyncWork());
    expect(decodePair(held.payload).first).toBe(0);
    for (const request of [c.kernel.presuspend(), c.kernel.postsuspend(), c.kernel.resume()]) {
      expect((await c.replica.request(request)).error).toBe(0);
    }
    // The released regions are handed out as resync work.
    const handed = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const work = await b.replica.request(b.kernel.getResyncWork());
      const { first, second } = decodePair(work.payload);
      if (first !== 1) break;
      handed.add(second);
      expect((await b.replica.request(b.kernel.setRegionSync(second, true))).error).toBe(0);
    }
    expect([...handed].sort()).toEqual([5, 6]);
    await cluster.settle();
    expect(Buffer.from(b.replica.log.snapshot())).toEqual(Buffer.from(c.replica.log.snapshot()));
    expectAllAnsweredOnce(b, c);
    await cluster.stop();
  });

  it("re-joins a restarted member from a snapshot; all replicas agree byte for byte", async () => {
    const cluster = new TestCluster();
    const a = await cluster.start(1);
    const b = await cluster.start(2);
    const c = await cluster.start(3);
    for (const m of [a, b, c]) await cluster.up(m, diskLogArgs(64, "7:0", "nosync"));
    expect((await c.replica.request(c.kernel.flush([11, 12]))).error).toBe(0);
    await cluster.settle();
    const saved = await b.replica.saveSnapshot();
    expect((await a.replica.request(a.kernel.flush([20]))).error).toBe(0);

    await c.bus.abort();
    cluster.members.delete(3);
    const c2 = await cluster.start(3, 0x777n); // the same node id, a new run
    expect(c2.replica.startedFrom?.seq).toBe(saved.seq);
    await cluster.up(c2, diskLogArgs(64, "7:0", "nosync"));
    expect((await b.replica.request(b.kernel.flush([30]))).error).toBe(0);
    const seq = await cluster.settle();
    for (const m of [a, b, c2]) {
      // The previous run of node 3 was declared failed exactly once (by itself or node 1).
      expect(failuresOf(m.stream, 3).length).toBeLessThanOrEqual(1);
      expect(m.bus.deliveredSeq).toBe(seq);
    }
    expect(failuresOf(a.stream, 3)).toHaveLength(1);
    expect(groupOf(a).syncBits.test(11)).toBe(false);
    const hex = (m: Member) => Buffer.from(m.replica.log.snapshot()).toString("hex");
    expect(hex(b)).toBe(hex(a));
    expect(hex(c2)).toBe(hex(a));
    expectAllAnsweredOnce(a, b, c2);
    await cluster.stop();
  });

  it("declares no one failed after this process itself was paused longer than the timeout", async () => {
    const cluster = new TestCluster();
    const members = [await cluster.start(1), await cluster.start(2), await cluster.start(3)];
    for (const m of members) await cluster.up(m, diskLogArgs(64, "7:0", "nosync"));
    await cluster.settle();
    // Every heartbeat in the bucket expires while the event loop is blocked (a long GC
    // pause, a starved VM): the first member to tick again must not judge the others.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, FAILURE_TIMEOUT_MS * 2);
    await new Promise((r) => setTimeout(r, FAILURE_TIMEOUT_MS * 2));
    for (const m of members) {
      expect((await m.replica.request(m.kernel.flush([m.node]))).error).toBe(0);
    }
    await cluster.settle();
    for (const m of members) {
      expect(m.stream.filter((e) => e.op.kind === "node-failed")).toHaveLength(0);
    }
    expectAllAnsweredOnce(...members);
    await cluster.stop();
  });

  it("survives a NATS server restart mid-stream: every request answered once", async () => {
    const cluster = new TestCluster(5_000);
    const members = [await cluster.start(1), await cluster.start(2), await cluster.start(3)];
    for (const m of members) await cluster.up(m, diskLogArgs(64, "7:0", "nosync"));
    const load = Promise.all(
      members.map(async (m) => {
        for (let i = 0; i < 60; i++) {
          const region = (m.node * 16 + i) % 64;
          const flush = await m.replica.request(m.kernel.flush([region]));
          expect(flush.error).toBe(0);
          await m.replica.request(m.kernel.clear([region]));
        }
      }),
    );
    await waitFor("some load", () => members[0]!.bus.deliveredSeq > 60);
    await nats.restart();
    await load;
    await cluster.settle();
    for (const m of members) {
      expect(m.stream.filter((e) => e.op.kind === "node-failed")).toHaveLength(0);
      const seqs = m.stream.map((e) => e.seq);
      expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    }
    const hex = (m: Member) => Buffer.from(m.replica.log.snapshot()).toString("hex");
    expect(hex(members[1]!)).toBe(hex(members[0]!));
    expect(hex(members[2]!)).toBe(hex(members[0]!));
    expectAllAnsweredOnce(...members);
    await cluster.stop();
  });
});

function decodePair(payload: Uint8Array): { first: number; second: number } {
  if (payload.length !== 16) return { first: 0, second: 0 };
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { first: Number(view.getBigUint64(0, true)), second: Number(view.getBigUint64(8, true)) };
}
