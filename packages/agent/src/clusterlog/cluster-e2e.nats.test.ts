import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, natsServerBinary } from "@mirrorplane/simulator/nats-server";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Kernel } from "../../testing/server-harness.ts";
import { TestClient } from "../../testing/uapi-client.ts";
import { JetStreamBus } from "./jetstream-bus.ts";
import { FileLogDevices } from "./log-devices.ts";
import { ephemeralClusterKeys } from "./member-keys.ts";
import { ClusterLogServer } from "./server.ts";

// End to end: three agents' cluster-log servers over JetStream (a real nats-server),
// kernels talking to them through their Unix sockets, a steady load of marks, clears,
// flushes and resync work; the disk-writing member — which also holds marks and the
// recovery slot — is killed (its NATS connection dropped without a leave, its server
// torn down), then restarted to re-join from a snapshot. Waits are bounded only to avoid
// hanging; nothing is timed.

const UUID = "LVM-e2e";
const keys = ephemeralClusterKeys([1, 2, 3, 4]);
const REGIONS = 64;
const CTR = `${REGIONS * 1024} clustered-disk 7:0 1024 nosync`;

let nats: NatsServer;
let dir: string;

interface Agent {
  readonly id: number;
  readonly bus: JetStreamBus;
  readonly server: ClusterLogServer;
  readonly kernel: Kernel;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function startAgent(id: number, logFile: string): Promise<Agent> {
  const bus = new JetStreamBus({
    memberKeys: keys.get(id)!,
    nodeId: id,
    servers: nats.url,
    cluster: "e2e",
    failureTimeoutMs: 1_500,
    heartbeatIntervalMs: 250,
    publishTimeoutMs: 2_000,
  });
  const server = new ClusterLogServer({
    bus,
    devices: new FileLogDevices({ root: "/", overrides: new Map([["7:0", logFile]]) }),
    log: pino({ level: "silent" }),
    snapshotEvery: 40,
    snapshotIntervalMs: 0,
  });
  await server.start();
  const socket = join(dir, `node-${id}-${Date.now()}.sock`);
  await server.listenUnix(socket);
  const kernel = new Kernel(await TestClient.connect(socket));
  kernel.uuid = UUID;
  kernel.luid = BigInt(id) * 0x100n + 1n;
  return { id, bus, server, kernel };
}

/** kill -9 as the cluster sees it: no leave, the heartbeat key is left to expire. */
async function kill(agent: Agent): Promise<void> {
  await agent.bus.abort();
  agent.kernel.client.destroy();
  await agent.server.stop({ drainTimeoutMs: 100 }).catch(() => {});
}

function answeredOnce(agent: Agent): void {
  const counts = new Map<number, number>();
  for (const r of agent.kernel.client.received) counts.set(r.seq, (counts.get(r.seq) ?? 0) + 1);
  for (let seq = 1; seq < agent.kernel.client.nextSeq; seq++) expect(counts.get(seq)).toBe(1);
}

/** A node's steady load over its own regions: write (IRR, FLUSH with mark), then clear. */
async function load(agent: Agent, rounds: number, base: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    const region = base + (i % 8);
    const recovering = await agent.kernel.remoteRecovering(region);
    if (Array.isArray(recovering) && recovering[0] === 1) continue; // write re-queued
    expect((await agent.kernel.flush([region])).error).toBe(0);
    await agent.kernel.clear([region]);
  }
}

describe.skipIf(natsServerBinary() === null)("three agents over JetStream, end to end", () => {
  beforeAll(async () => {
    nats = await NatsServer.start();
    dir = await mkdtemp(join(tmpdir(), "mp-e2e-"));
  });
  afterAll(async () => {
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("keeps the log coherent through kill -9 of the disk writer and its re-join", async () => {
    const logFile = join(dir, "log-7-0.img");
    await writeFile(logFile, new Uint8Array(1 << 20)); // the shared log device
    const a1 = await startAgent(1, logFile);
    const a2 = await startAgent(2, logFile);
    const a3 = await startAgent(3, logFile);
    const agents = [a1, a2, a3];
    try {
      for (const a of agents) await a.kernel.up(CTR);
      // Node 1 is the server (lowest id): it writes the disk log. It holds marks on
      // 50..52, and node 2 holds 20 for the whole test.
      expect((await a1.kernel.flush([50, 51, 52])).error).toBe(0);
      expect((await a2.kernel.flush([20])).error).toBe(0);
      // Node 1 also takes the recovery slot for a region a failed write left out of sync.
      expect((await a1.kernel.setRegionSync(40, false)).error).toBe(0);
      // Nodes 2 and 3 saw the full sync count (hint rc): region 40 waits until each has
      // asked about it (a write there) and got a hint below it (hint guard).
      expect(await a1.kernel.resyncWork()).toEqual([0, 0]);
      for (const a of [a2, a3]) {
        const [recovering, hint] = (await a.kernel.remoteRecovering(40)) as number[];
        expect(recovering).toBe(1);
        expect(hint).toBeLessThanOrEqual(40);
      }
      expect(await a1.kernel.resyncWork()).toEqual([1, 40]);

      const busy = Promise.all([load(a2, 120, 0), load(a3, 120, 8)]);
      await waitFor("load to start", () => a2.kernel.client.received.length > 20);
      await kill(a1);
      await waitFor("node 1 declared failed", () =>
        [a2, a3].every((a) => !a.bus.members().some((m) => m.node === 1)),
      );
      await busy;

      // No region a live member marked is ever reported clean.
      expect(await a3.kernel.isClean(20)).toBe(0);
      // Node 3's kernel may hold a hint above them (hint guard): its agent re-arms it.
      await a3.kernel.suspendResume();
      // Node 1's marked regions and its recovery slot are out of sync and handed out.
      const handed: number[] = [];
      for (let i = 0; i < 10; i++) {
        const work = await a2.kernel.resyncWork();
        if (!Array.isArray(work) || work[0] !== 1) break;
        handed.push(work[1]);
        expect((await a2.kernel.setRegionSync(work[1], true)).error).toBe(0);
        await a2.kernel.clear([work[1]]);
      }
      expect(handed.sort((x, y) => x - y)).toEqual([40, 50, 51, 52]);

      // Node 1 restarts and re-joins from a snapshot; a fourth member joins mid-load.
      const b1 = await startAgent(1, logFile);
      await b1.kernel.up(CTR);
      const a4 = await startAgent(4, logFile);
      await Promise.all([load(a2, 40, 0), load(b1, 40, 24), a4.kernel.up(CTR)]);
      await load(a4, 20, 32);
      const live = [b1, a2, a3, a4];
      const target = Math.max(...live.map((a) => a.server.lastSeq));
      await waitFor("replicas to catch up", () => live.every((a) => a.server.lastSeq >= target));
      const hex = (a: Agent) => Buffer.from(a.server.clusterLog.snapshot()).toString("hex");
      for (const a of live) expect(hex(a)).toBe(hex(a2));
      for (const a of live) answeredOnce(a);
      expect(await a4.kernel.isClean(20)).toBe(0);
      for (const a of live) {
        a.kernel.client.destroy();
        await a.server.stop({ drainTimeoutMs: 2_000 });
      }
    } finally {
      for (const a of agents) await a.bus.abort().catch(() => {});
    }
  }, 120_000);
});
