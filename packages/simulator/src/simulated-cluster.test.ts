import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClusterBus } from "@mirrorplane/agent/clusterlog/bus";
import { createClusterBusFromOptions } from "@mirrorplane/agent/clusterlog/create-cluster-bus";
import { ephemeralClusterKeys } from "@mirrorplane/agent/clusterlog/member-keys";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SimMirror } from "./kernel/dm-raid1.ts";
import type { KernelTimings } from "./kernel/ulog-transfer.ts";
import { NatsServer, natsServerBinary } from "./nats-server.ts";
import { type MirrorSpec, SimCluster, WriteLoad } from "./simulated-cluster.ts";

// The mirror simulator against real agents (ClusterLogServer on Unix sockets, in-process
// order): writes under load, a recovery in progress, an agent killed, a leg failing. What
// must hold: once recovery finishes the legs of every mirror are byte-identical, and no
// write was acknowledged while a replica or the on-disk log called its region clean.
// Timings are the kernel's, scaled down; nothing asserts a duration.

const FAST: KernelTimings = {
  requestTimeoutMs: 400,
  esrchRetryMs: 40,
  remoteRecoveringWindowMs: 20,
  requeueMs: 10,
  lazyFlushMs: 80,
};

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${what} never happened`);
}

let cluster: SimCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

async function start(nodes: number, busFor?: (node: number) => ClusterBus): Promise<SimCluster> {
  cluster = await SimCluster.start({
    dir: await mkdtemp(join(tmpdir(), "mp-sim-")),
    nodes,
    timings: FAST,
    ...(busFor ? { busFor } : {}),
  });
  return cluster;
}

const RESYNCING: MirrorSpec = { name: "a", regions: 48, regionBytes: 4096, divergeEvery: 3 };
const NOSYNC: MirrorSpec = {
  name: "b",
  regions: 24,
  regionBytes: 8192,
  sync: "nosync",
  integratedFlush: true,
};
const CORE: MirrorSpec = { name: "c", regions: 16, regionBytes: 2048, disk: false };

async function settle(c: SimCluster, load: WriteLoad, names: string[]): Promise<void> {
  await until("load", () => load.acked >= 150);
  for (const name of names) await until(`${name} in sync`, () => c.inSync(name));
  await load.stop();
  expect(load.failed).toBe(0);
  for (const name of names) expect(await c.legsIdentical(name), `${name} legs`).toBe(true);
  expect(c.violations).toEqual([]);
}

describe("the mirror simulator against one agent", () => {
  it("recovers diverged legs under write load; legs end identical, no unsafe ack", async () => {
    const c = await start(1);
    await c.addMirror(RESYNCING);
    await c.addMirror(NOSYNC);
    await c.addMirror(CORE);
    const a = c.mirrors.get("a")![0]!;
    expect(a.syncCount).toBeLessThan(48); // a recovery is in progress
    const load = new WriteLoad([...c.mirrors.values()].flat(), { writers: 4, bytes: 512 });
    await settle(c, load, ["a", "b", "c"]);
    expect(a.stats.recovered).toBeGreaterThan(0);
    expect(a.stats.marks).toBeGreaterThan(0);
    expect(c.mirrors.get("b")![0]!.stats.flushes).toBeGreaterThan(0);
  });

  it("the agent killed and restarted: the kernel re-constructs (-ESRCH path) and goes on", async () => {
    const c = await start(1);
    await c.addMirror({ ...RESYNCING, integratedFlush: true });
    const load = new WriteLoad(c.mirrors.get("a")!, { writers: 3, bytes: 256 });
    await until("some writes", () => load.acked >= 30);
    await c.kill(1);
    await c.restart(1);
    await until("writes after the restart", () => load.acked >= 60);
    // Regions dirty at the kill are out of sync now, but a kernel whose hint reached the
    // region count never asks for resync work again until a resume: the restarted agent
    // suspends and resumes it by itself (rearm.ts, docs/KERNEL-BRIDGE.md).
    await settle(c, load, ["a"]);
    expect(c.hosts.get(1)!.client.stats.reconstructs).toBeGreaterThan(0);
    expect(c.agents.get(1)!.rearmer.stats.rearms).toBeGreaterThan(0);
  });

  it("a failed leg: writes go on, its regions go out of sync, repair + resume resyncs them", async () => {
    const c = await start(1);
    // Not `nosync`: a single node's resume re-reads the log, and a nosync table declares
    // every region in sync there (spec §2.5, P32) — the failed leg would never be resynced.
    await c.addMirror({ ...RESYNCING, divergeEvery: 0 });
    const a = c.mirrors.get("a")![0]!;
    await until("initial sync", () => c.inSync("a"));
    const load = new WriteLoad([a], { writers: 3, bytes: 512 });
    await until("some writes", () => load.acked >= 20);
    a.failLeg(1);
    await until("writes while failed", () => a.stats.legWriteFailures >= 10);
    await load.stop();
    expect(c.inSync("a")).toBe(false);
    expect(await c.legsIdentical("a")).toBe(false);
    a.repairLeg(1);
    // The kernel asks for resync work only after a resume (its hint reached rc).
    await c.suspendResume("a");
    const more = new WriteLoad([a], { writers: 2, bytes: 512, seed: 7 });
    await settle(c, more, ["a"]);
  });
});

/**
 * Three agents, a recovery in progress, writes on every node; node 2's agent killed -9 and
 * started again. Legs identical and no unsafe ack once recovery finishes; every replica
 * agrees on the final state.
 */
async function writesKillAndBack(c: SimCluster): Promise<void> {
  await c.addMirror({ ...RESYNCING, integratedFlush: true });
  await c.addMirror(NOSYNC);
  const all = [...c.mirrors.values()].flat();
  // Node 2's kernel (index 1 of every mirror's per-node list) has its own writers: they
  // wait in the -ESRCH loop while its agent is dead, the others carry on.
  const onNode2 = [...c.mirrors.values()].map((list) => list[1]!);
  const survivors = new WriteLoad(
    all.filter((m) => !onNode2.includes(m)),
    { writers: 4, bytes: 512 },
  );
  const node2 = new WriteLoad(onNode2, { writers: 2, bytes: 512, seed: 5 });
  await until("some writes", () => survivors.acked >= 40 && node2.acked >= 20);
  // Node 2's kernel is quiet when its agent dies. A kernel that keeps writing regions
  // it has DIRTY needs no log request for that, while the survivors, told the node
  // failed, recover those regions (§4.5 [REC]) — the copy can race the write. The
  // simulator found this; it needs fencing of a failed node (docs/KERNEL-BRIDGE.md).
  await node2.stop();
  await c.kill(2);
  const before = survivors.acked;
  await until("writes go on without node 2", () => survivors.acked >= before + 40);
  // The survivors have declared node 2 failed (at once in-process; over JetStream once
  // its heartbeat expired) before it comes back.
  await until("node 2 declared failed", () =>
    c.servers().every((s) => {
      const group = s.clusterLog.state.groups.get(c.specs.get("a")!.uuid);
      return group !== undefined && !group.members.some((m) => m.node === 2);
    }),
  );
  await c.restart(2);
  const node2Again = new WriteLoad(onNode2, { writers: 2, bytes: 512, seed: 6 });
  // (A write to a region already DIRTY needs no log request at all, as in the kernel's
  // region hash, so node 2 may ack some writes before it notices its agent is new.)
  await until("node 2 re-constructed its logs", () => {
    return c.hosts.get(2)!.client.stats.reconstructs > 0;
  });
  await until("node 2 writes again", () => node2Again.acked >= 20);
  // No operator step: the agents re-arm the kernels whose hints hold the recovery back.
  await node2Again.stop();
  await settle(c, survivors, ["a", "b"]);
  // Every replica agrees on the final state (over JetStream, once each has applied the
  // last operations: deliveries reach the members one after the other).
  await until("every replica at the same state", () => {
    const [first, ...others] = c.servers().map((s) => Buffer.from(s.clusterLog.snapshot()));
    return others.every((o) => Buffer.compare(o, first!) === 0);
  });
  const [s1, s2, s3] = c.servers();
  expect(s2!.clusterLog.snapshot()).toEqual(s1!.clusterLog.snapshot());
  expect(s3!.clusterLog.snapshot()).toEqual(s1!.clusterLog.snapshot());
}

describe("the mirror simulator against three agents (in-process order)", () => {
  it("writes on every node, recovery in progress, one agent killed -9 and back", async () => {
    await writesKillAndBack(await start(3));
  });

  // Known intermittent stall (≈ 1 run in 4 over JetStream, rarer in-process): after the
  // leg fails a write waits ~60 s and the suspend/resume then hangs; it predates this
  // session's bus and server changes (bisected) and is not yet understood. Retried so CI
  // reports it only when it repeats; see the closing note of 2026-12-03.
  it("a leg fails under load on all nodes; after repair and resume all legs match", async () => {
    await legFailsAndRepaired(await start(3));
  });
});

/**
 * A leg fails on every node under load; repaired (suspend, resume — what dmeventd's table
 * reload does) while the writes are still in flight: the legs end identical.
 *
 * The repair comes before the load stops because writes may be waiting on it, by design:
 * a failed write marks its region out of sync on every replica, a node whose kernel held
 * an in_sync hint above it is re-armed (rearm.ts), and from then on that kernel asks
 * IS_REMOTE_RECOVERING, which answers "recovering" for an out-of-sync region (as
 * cmirrord does: any node may be handed it as resync work and copy it under the write).
 * With the leg failed on every node nobody can recover it, so those writes are re-queued
 * until the leg is back — the test once waited for them first and hung (≈ 1 run in 4).
 */
async function legFailsAndRepaired(c: SimCluster): Promise<void> {
  await c.addMirror({ ...RESYNCING, sync: "nosync", divergeEvery: 0 });
  const mirrors = c.mirrors.get("a")!;
  const load = new WriteLoad(mirrors, { writers: 6, bytes: 512 });
  await until("some writes", () => load.acked >= 30);
  for (const m of mirrors) m.failLeg(1);
  await until("failed writes", () => mirrors.some((m) => m.stats.legWriteFailures >= 5));
  for (const m of mirrors) m.repairLeg(1);
  await c.suspendResume("a");
  await load.stop();
  expect(load.failed).toBe(0);
  await settle(c, new WriteLoad(mirrors, { writers: 3, bytes: 512, seed: 3 }), ["a"]);
}

// The same over real NATS JetStream: a nats-server on loopback, every agent's bus a
// JetStreamBus. A killed agent's bus drops its connection without a leave; the survivors
// declare it failed once its heartbeat expires (or its next run does, on joining).
// This found the stale-hint race (issue 5, docs/KERNEL-BRIDGE.md finding 8): survivors
// whose kernels held an in_sync hint above a failed node's regions wrote them to the
// primary leg only while another node copied them (legs differed in ~1 run in 20). The
// hint guard in the core and each agent's re-arm (rearm.ts) close it.
describe.runIf(natsServerBinary() !== null)(
  "the mirror simulator against three agents (NATS JetStream)",
  () => {
    let nats: NatsServer | null = null;
    beforeAll(async () => {
      nats = await NatsServer.start();
    });
    afterAll(async () => {
      await nats?.stop();
    });
    const keys = ephemeralClusterKeys([1, 2, 3]);

    it("writes on every node, recovery in progress, one agent killed -9 and back", async () => {
      // A stream and buckets of their own for each run of this test.
      const name = `sim-${process.pid}-${Date.now().toString(36)}`;
      const c = await start(3, (node) =>
        createClusterBusFromOptions({
          nodeId: node,
          natsUrl: nats!.url,
          cluster: name,
          memberKeys: keys.get(node)!,
          failureTimeoutMs: 2_000,
        }),
      );
      await writesKillAndBack(c);
    });

    it("a leg fails under load on all nodes; after repair and resume all legs match", async () => {
      const name = `sim-leg-${process.pid}-${Date.now().toString(36)}`;
      const c = await start(3, (node) =>
        createClusterBusFromOptions({
          nodeId: node,
          natsUrl: nats!.url,
          cluster: name,
          memberKeys: keys.get(node)!,
          failureTimeoutMs: 5_000, // no failure expected: room for a loaded machine
        }),
      );
      await legFailsAndRepaired(c);
    });
  },
);

describe("the write load", () => {
  // Two overlapping writes in flight together may reach the legs in different orders
  // (dm-raid1 writes each leg on its own), so the legs would differ with nothing wrong in
  // the log: that made "legs identical" fail now and then. No real writer does this.
  it("never has two writes to overlapping bytes in flight, across loads", async () => {
    const inFlight: { region: number; start: number; end: number }[] = [];
    let overlaps = 0;
    let writes = 0;
    const fake = {
      regionCount: 2,
      options: { regionBytes: 1024, legPaths: ["leg0", "leg1"] },
      async write(region: number, offset: number, data: Uint8Array): Promise<void> {
        const w = { region, start: offset, end: offset + data.length };
        if (inFlight.some((o) => o.region === region && o.start < w.end && w.start < o.end)) {
          overlaps++;
        }
        inFlight.push(w);
        writes++;
        for (let i = 0; i < 1 + (writes % 3); i++) await new Promise((r) => setImmediate(r));
        inFlight.splice(inFlight.indexOf(w), 1);
      },
    } as unknown as SimMirror;
    const loads = [
      new WriteLoad([fake], { writers: 4, bytes: 512 }),
      new WriteLoad([fake], { writers: 4, bytes: 512, seed: 9 }),
    ];
    await until("writes", () => writes >= 400);
    for (const load of loads) await load.stop();
    expect(overlaps).toBe(0);
  });
});
