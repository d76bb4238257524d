import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentApiServer } from "@mirrorplane/agent";
import { createDb, type Db } from "@mirrorplane/db";
import { createIngestPool, type IngestPool } from "@mirrorplane/db/ingest";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { SimCluster, SimMirrorInventory } from "@mirrorplane/simulator";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "~/server/agents";
import { LiveHub } from "~/server/live/live-hub";
import type { LiveChange, LiveMessage } from "~/server/live/live-state";
import { createCaller } from "~/server/root";
import { createContextInner } from "~/server/trpc";
import { ResyncController } from "../../packages/agent/src/clusterlog/resync-control";
import { EventPipeline } from "../../packages/agent/src/events/pipeline";
import { startTestAgent } from "./agent-api";

// The live hub's mirror state (issue 13: one live channel instead of polling) from real
// agent APIs over a simulated cluster (simulated kernels, real leg files; each agent's resync
// events stored through the agent's own event pipeline) and real Postgres:
// what an operator's resync, throttle and cancel, and a failing leg, put on the stream.

const token = "live-mirrors-token-0123456789";
const timings = {
  requestTimeoutMs: 400,
  esrchRetryMs: 40,
  remoteRecoveringWindowMs: 20,
  requeueMs: 10,
  lazyFlushMs: 80,
};

async function until(what: string, probe: () => Promise<boolean>) {
  for (let i = 0; i < 300; i++) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} never happened`);
}

describe("live hub: mirror sync state from the agents (real agent APIs, real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let cluster: SimCluster;
  const agents: AgentApiServer[] = [];
  const pipelines: EventPipeline[] = [];
  const controllers: ResyncController[] = [];
  let pool: IngestPool;
  const directory = createAgentDirectory(token);
  const operator = () =>
    createCaller(
      createContextInner({
        db,
        agents: directory,
        now: () => new Date(),
        user: { id: "o", username: "otto", role: "operator" },
      }),
    );

  beforeAll(async () => {
    cluster = await SimCluster.start({
      dir: await mkdtemp(join(tmpdir(), "mp-web-live-")),
      nodes: 2,
      timings,
    });
    // A core log: both agents may re-arm their kernels at once (a suspend of every member),
    // and a `nosync` *disk* log re-formed by a resume ignores its disk bits as the kernel's
    // dm-log does (spec P32), so a run would vanish mid-test; a core log keeps the
    // cluster's bits (requests-lifecycle.ts masterResume). That hazard is noted in
    // docs/KERNEL-BRIDGE.md, not tested here: this test is about the live stream.
    await cluster.addMirror({
      name: "data",
      regions: 64,
      regionBytes: 4096,
      sync: "nosync",
      disk: false,
    });
    database = await createTestDatabase(inject("pgAdminUrl"), "live-mirrors");
    db = createDb(database.url, { poolSize: 2 });
    await db.user.create({
      data: { id: "o", name: "otto", username: "otto", email: "otto@users.mirrorplane.invalid" },
    });
    pool = createIngestPool(database.url);
    const servers = cluster.servers();
    for (const [i, nodeId] of ["n1", "n2"].entries()) {
      const events = new EventPipeline({
        pool,
        nodeId,
        spoolPath: join(cluster.options.dir, `${nodeId}.spool`),
        spoolMaxBytes: 1 << 20,
        log: pino({ level: "silent" }),
        flushDelayMs: 20,
      });
      pipelines.push(events);
      const resync = new ResyncController({
        server: servers[i]!,
        nodeId,
        inventory: new SimMirrorInventory(cluster, servers[i]!.nodeId),
        events,
      });
      // Sampling once a second, as the agent runs it: completion, throttle, progress events.
      resync.start();
      controllers.push(resync);
      const agent = await startTestAgent(token, { resync });
      agents.push(agent);
      await db.node.create({
        data: {
          id: nodeId,
          hostname: nodeId,
          apiUrl: agent.url,
          agentVersion: "0",
          sampleIntervalMs: 3_600_000,
          startedAt: new Date(),
          lastSeenAt: new Date(),
        },
      });
      await events.start();
    }
  });
  afterAll(async () => {
    for (const controller of controllers) controller.stop();
    for (const pipeline of pipelines) await pipeline.stop();
    await pool.end();
    for (const agent of agents) await agent.close();
    await cluster.close();
    await db.$disconnect();
    await database.drop();
  });

  it("sends a mirror's sync state once, then only what changed: the run, its throttle, a failed leg", async () => {
    // Timers never fire in this test (an hour): each poll is one look.
    const hub = new LiveHub({ db, agents: directory, intervalMs: 3_600_000 });
    const got: LiveMessage[] = [];
    const stop = hub.subscribe((m) => got.push(m));
    const changes = () => got.flatMap((m) => (m.kind === "changes" ? m.changes : []));
    const ofMirror = (c: LiveChange) => "uuid" in c && c.uuid === "LVM-sim-data";
    try {
      await hub.poll();
      const first = changes().filter(ofMirror);
      expect(first.map((c) => c.type)).toEqual(["mirror-sync", "mirror-resync", "mirror-facts"]);
      expect(first[0]).toMatchObject({
        value: { regionCount: 64, inSync: 64, resyncId: null, trend: "in-sync" },
      });
      expect(first[1]).toMatchObject({ value: null }); // no run since the agents started
      expect(hub.log.snapshot.unreachable).toEqual([]);

      // Nothing changed: nothing is sent.
      got.length = 0;
      await hub.poll();
      expect(changes().filter(ofMirror)).toEqual([]);

      // A short run that starts and ends between two looks at a mirror in sync before and
      // after: the agent's resync events name it, so the hub asks for its latest run.
      const short = await operator().mirrors.startResync({
        uuid: "LVM-sim-data",
        first: 0,
        last: 3,
      });
      await until("the short run is done and its events are stored", async () => {
        const d = await operator().mirrors.detail({ uuid: "LVM-sim-data" });
        const stored = await db.event.count({ where: { kind: "resync", mirror: "LVM-sim-data" } });
        return d.progress?.state === "done" && d.inSync === 64 && stored > 0;
      });
      got.length = 0;
      await hub.pollMirrors();
      expect(changes().filter(ofMirror)).toEqual([
        {
          type: "mirror-resync",
          uuid: "LVM-sim-data",
          value: expect.objectContaining({ id: short.id, state: "done" }),
        },
      ]);

      // An operator's resync, throttled to 1 region/s: the mirror is out of sync and the
      // run is on the stream with its values.
      const started = await operator().mirrors.startResync({
        uuid: "LVM-sim-data",
        first: 0,
        last: 63,
        throttle: 1,
      });
      got.length = 0;
      await hub.pollMirrors();
      const sync = changes().find((c) => c.type === "mirror-sync" && ofMirror(c));
      expect(sync).toMatchObject({ value: { resyncId: started.id } });
      expect((sync as { value: { inSync: number } }).value.inSync).toBeLessThan(64);
      expect(changes().find((c) => c.type === "mirror-resync")).toMatchObject({
        value: { id: started.id, state: "running", throttle: 1, first: 0, last: 63 },
      });
      expect(changes().some((c) => c.type === "mirror-facts")).toBe(false);

      // A new throttle: the run's change carries it.
      await operator().mirrors.throttle({ uuid: "LVM-sim-data", regionsPerSecond: 2 });
      got.length = 0;
      await hub.pollMirrors();
      expect(changes().find((c) => c.type === "mirror-resync")).toMatchObject({
        value: { id: started.id, throttle: 2 },
      });

      // Cancelled: the run's state, and no resync running any more.
      await operator().mirrors.cancel({ uuid: "LVM-sim-data" });
      got.length = 0;
      await hub.pollMirrors();
      expect(changes().find((c) => c.type === "mirror-resync")).toMatchObject({
        value: { id: started.id, state: "cancelled" },
      });
      expect(hub.log.snapshot.mirrors["LVM-sim-data"]!.sync.resyncId).toBeNull();

      // A leg fails in node 1's kernel: not carried, its facts' digest changes.
      cluster.mirrors.get("data")![0]!.failLeg(1);
      got.length = 0;
      await hub.pollMirrors();
      expect(
        changes()
          .filter(ofMirror)
          .map((c) => c.type),
      ).toContain("mirror-facts");

      // An agent stops answering: it is named, and the mirror is held by the other alone.
      await agents[1]!.close();
      got.length = 0;
      await hub.pollMirrors();
      expect(changes()).toContainEqual({ type: "unreachable", nodeIds: ["n2"] });
      expect(
        changes()
          .filter(ofMirror)
          .map((c) => c.type),
      ).toContain("mirror-facts");
      expect(hub.log.snapshot.mirrors["LVM-sim-data"]).toBeDefined();
    } finally {
      stop();
    }
  });
});
