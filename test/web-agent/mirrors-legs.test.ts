import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentApiServer } from "@mirrorplane/agent";
import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { SimCluster, SimMirrorInventory } from "@mirrorplane/simulator";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "~/server/agents";
import { createCaller } from "~/server/root";
import { createContextInner } from "~/server/trpc";
import { ResyncController } from "../../packages/agent/src/clusterlog/resync-control";
import { startTestAgent } from "./agent-api";

// Legs, region size, bytes in the plan and the blast radius through the control plane:
// real Postgres, two real agent APIs over a simulated cluster (simulated kernels, real leg
// files). Node n1's agent reports its kernel's legs (SimMirrorInventory); node n2's is an
// agent that does not (no inventory: the shape older agents answer with).

const token = "legs-test-token-0123456789";
const timings = {
  requestTimeoutMs: 400,
  esrchRetryMs: 40,
  remoteRecoveringWindowMs: 20,
  requeueMs: 10,
  lazyFlushMs: 80,
};

describe("mirror legs and blast radius (real Postgres, real agent APIs, simulated kernels)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let cluster: SimCluster;
  const controllers: ResyncController[] = [];
  const agents: AgentApiServer[] = [];
  const caller = () =>
    createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory(token),
        now: () => new Date(),
        user: { id: "v", username: "vera", role: "viewer" },
      }),
    );
  const leg = (name: string, i: number) => join(cluster.options.dir, `${name}-leg${i}.img`);

  beforeAll(async () => {
    cluster = await SimCluster.start({
      dir: await mkdtemp(join(tmpdir(), "mp-web-legs-")),
      nodes: 2,
      timings,
    });
    // In sync, three legs; node 1's kernel has seen a write to leg 2 fail.
    await cluster.addMirror({
      name: "db",
      regions: 64,
      regionBytes: 8192,
      legs: 3,
      sync: "nosync",
    });
    cluster.mirrors.get("db")![0]!.failLeg(2);
    // In sync, leg 1 failed: leg 0 is the last good copy.
    await cluster.addMirror({ name: "solo", regions: 32, regionBytes: 4096, sync: "nosync" });
    cluster.mirrors.get("solo")![0]!.failLeg(1);
    // Its initial sync, paced slowly: out of sync for the whole test.
    await cluster.addMirror({
      name: "fresh",
      regions: 64,
      regionBytes: 4096,
      recoveryDelayMs: 500,
    });

    database = await createTestDatabase(inject("pgAdminUrl"), "mirror-legs");
    db = createDb(database.url, { poolSize: 2 });
    const servers = cluster.servers();
    for (const [i, nodeId] of ["n1", "n2"].entries()) {
      const controller = new ResyncController({
        server: servers[i]!,
        nodeId,
        inventory: nodeId === "n1" ? new SimMirrorInventory(cluster, servers[i]!.nodeId) : null,
      });
      controllers.push(controller);
      const agent = await startTestAgent(token, { resync: controller });
      agents.push(agent);
      await db.node.create({
        data: {
          id: nodeId,
          hostname: nodeId,
          apiUrl: agent.url,
          agentVersion: "0",
          sampleIntervalMs: 60_000,
          startedAt: new Date(),
          lastSeenAt: new Date(),
        },
      });
    }
  });
  afterAll(async () => {
    for (const agent of agents) await agent.close();
    await cluster.close();
    await db.$disconnect();
    await database.drop();
  });

  it("lists size, region size, log type and each leg's health, from an agent that reports them", async () => {
    const { mirrors } = await caller().mirrors.list();
    const db = mirrors.find((m) => m.uuid === "LVM-sim-db")!;
    expect(db).toMatchObject({
      name: "db",
      sizeBytes: 64 * 8192,
      regionBytes: 8192,
      logType: "clustered-disk",
      nodes: ["n1", "n2"],
      legsNodeId: "n1",
      legsUnknownReason: null,
      logDevice: { nodeId: "n1", majorMinor: "253:0", health: "A" },
    });
    expect(db.legs!.map((l) => [l.device, l.health, l.primary, l.source])).toEqual([
      [leg("db", 0), "A", true, true],
      [leg("db", 1), "A", false, false],
      [leg("db", 2), "D", false, false],
    ]);
    const fresh = mirrors.find((m) => m.uuid === "LVM-sim-fresh")!;
    expect(fresh.inSync).toBeLessThan(64);
    expect(fresh.regionBytes).toBe(4096);
  });

  it("the plan says bytes (regions × region size), the source leg and the targets", async () => {
    const plan = await caller().mirrors.plan({ uuid: "LVM-sim-db", first: 10, last: 19 });
    expect(plan).toMatchObject({
      regions: 10,
      regionBytes: 8192,
      bytes: 10 * 8192,
      source: { index: 0, device: leg("db", 0), health: "A", nodeId: "n1" },
      targets: [
        { index: 1, device: leg("db", 1), health: "A" },
        { index: 2, device: leg("db", 2), health: "D" },
      ],
    });
    const whole = await caller().mirrors.plan({ uuid: "LVM-sim-solo" });
    expect(whole).toMatchObject({ regions: 32, bytes: 32 * 4096, wholeMirror: true });
  });

  it("the mirror page shows each leg's role and what its device's failure would take", async () => {
    const detail = await caller().mirrors.detail({ uuid: "LVM-sim-solo" });
    expect(detail).toMatchObject({ regionBytes: 4096, sizeBytes: 32 * 4096 });
    const [n1, n2] = detail.views;
    expect(n1!.nodeId).toBe("n1");
    expect(n1!.legs!.map((l) => [l.health, l.source])).toEqual([
      ["A", true],
      ["D", false],
    ]);
    expect(n1!.legs![0]!.blastRadius).toMatchObject([
      {
        uuid: "LVM-sim-solo",
        reason: "last-healthy-leg",
        regionsAtRisk: 32,
        bytesAtRisk: 32 * 4096,
      },
    ]);
    expect(n1!.legs![1]!.blastRadius).toEqual([]);
    expect(n2).toEqual({
      nodeId: "n2",
      legs: null,
      reason: "this agent does not report legs",
      // No table line either: a leg replacement cannot be built for this node.
      table: null,
      dmUuid: null,
    });
  });

  it("blast radius of a device: last healthy leg, source of out-of-sync regions, nothing", async () => {
    const solo = await caller().mirrors.blastRadius({ nodeId: "n1", device: leg("solo", 0) });
    expect(solo.atRisk.map((e) => [e.uuid, e.reason])).toEqual([
      ["LVM-sim-solo", "last-healthy-leg"],
    ]);
    const fresh = await caller().mirrors.blastRadius({ nodeId: "n1", device: leg("fresh", 0) });
    expect(fresh.atRisk).toHaveLength(1);
    const entry = fresh.atRisk[0]!;
    expect(entry.reason).toBe("only-copy-of-out-of-sync-regions");
    expect(entry.regionsAtRisk).toBeGreaterThan(0);
    expect(entry.bytesAtRisk).toBe(entry.regionsAtRisk * 4096);
    // db keeps a healthy leg elsewhere; a target leg's loss takes no last copy.
    for (const device of [leg("db", 0), leg("fresh", 1)]) {
      expect((await caller().mirrors.blastRadius({ nodeId: "n1", device })).atRisk).toEqual([]);
    }
    // n2's agent does not report legs: unknown, never "safe".
    const n2 = await caller().mirrors.blastRadius({ nodeId: "n2", device: leg("solo", 0) });
    expect(n2.atRisk).toEqual([]);
    expect(n2.unknown.map((u) => u.uuid)).toEqual(["LVM-sim-db", "LVM-sim-fresh", "LVM-sim-solo"]);
  });

  it("blast radius of a node: both nodes hold every mirror, so neither alone loses one", async () => {
    for (const nodeId of ["n1", "n2"]) {
      const r = await caller().mirrors.blastRadius({ nodeId });
      expect(r).toMatchObject({ nodeId, device: null, atRisk: [] });
      expect(r.caveat).toMatch(/shared storage/);
    }
  });

  it("the devices page lists every leg device with its blast radius", async () => {
    const legs = await caller().devices.mirrorLegs();
    expect(legs.devices.map((d) => d.device).sort()).toEqual(
      [0, 1, 2]
        .map((i) => leg("db", i))
        .concat([0, 1].flatMap((i) => [leg("fresh", i), leg("solo", i)]))
        .sort(),
    );
    const solo0 = legs.devices.find((d) => d.device === leg("solo", 0))!;
    expect(solo0).toMatchObject({
      nodeId: "n1",
      legs: [{ uuid: "LVM-sim-solo", leg: 0, health: "A", source: true }],
    });
    expect(solo0.blastRadius.map((b) => b.uuid)).toEqual(["LVM-sim-solo"]);
    expect(legs.unknown.every((u) => u.nodeId === "n2")).toBe(true);
    expect(legs.nodes.map((n) => [n.nodeId, n.blastRadius])).toEqual([
      ["n1", []],
      ["n2", []],
    ]);
  });

  it("is refused to signed-out callers", async () => {
    const anonymous = createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory(token),
        now: () => new Date(),
        user: null,
      }),
    );
    await expect(anonymous.mirrors.blastRadius({ nodeId: "n1" })).rejects.toMatchObject({
      code: "UNAUTHORIZED",
    });
    await expect(anonymous.devices.mirrorLegs()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });
});
