import { hostname, release } from "node:os";
import { join } from "node:path";
import { type AgentApiServer, startApiServer } from "@mirrorplane/agent/api/server";
import { createClusterBusFromOptions } from "@mirrorplane/agent/clusterlog/create-cluster-bus";
import { ephemeralClusterKeys } from "@mirrorplane/agent/clusterlog/member-keys";
import { ResyncController } from "@mirrorplane/agent/clusterlog/resync-control";
import { membershipEvents } from "@mirrorplane/agent/collectors/membership-events";
import { EventPipeline } from "@mirrorplane/agent/events/pipeline";
import { SampleStore } from "@mirrorplane/agent/store";
import { agentVersion } from "@mirrorplane/agent/version";
import { createIngestPool, type IngestPool } from "@mirrorplane/db/ingest";
import type { Logger } from "pino";
import { NatsServer, natsServerBinary } from "./nats-server.ts";
import { type MirrorSpec, SimCluster, WriteLoad } from "./simulated-cluster.ts";
import { SimMirrorInventory } from "./simulated-inventory.ts";

// `mirrorplane-sim demo` (what `npm start` runs beside the host agent): a small cluster
// of three agents (over NATS JetStream on a private loopback nats-server when the
// nats-server binary is installed, else the in-process order) whose simulated kernels run a few mirrors of
// different sizes under live write load, one of them diverged so a recovery is in
// progress from the start. Each member is a node of its own, as on three hosts: its own
// agent API (resync.logs / progress / start / cancel / throttle and cluster.membership,
// from its replica and its host's simulated kernel), registered in Postgres as
// `demo-<n>` with its heartbeat and progress samples, and its own events (resync, and the
// membership changes it applied). Member 1's API is on the given port, the others on free
// ones (the dashboard finds agents by the URL each registered). Every few minutes member 1
// starts a range resync on its own, so there is always something syncing to look at.

export interface DemoOptions {
  readonly dataDir: string;
  readonly port: number;
  readonly host: string;
  readonly token: string;
  readonly databaseUrl?: string | undefined;
  readonly sampleIntervalMs: number;
  /** Start a range resync this often (ms; 0: never). */
  readonly resyncEveryMs: number;
  /** `auto`: order over JetStream when nats-server is installed; `off`: in-process. */
  readonly nats?: "auto" | "off";
  readonly log: Logger;
}

export const DEMO_MIRRORS: readonly MirrorSpec[] = [
  // The initial sync of this one takes a few minutes (kcopyd paced at 40 ms a region).
  { name: "db-primary", regions: 4096, regionBytes: 4096, divergeEvery: 2, recoveryDelayMs: 40 },
  { name: "logs", regions: 2048, regionBytes: 4096, sync: "nosync", integratedFlush: true },
  { name: "scratch", regions: 96, regionBytes: 8192, disk: false },
];

/** One member as a node: what an agent on its host would run. */
export interface DemoMember {
  readonly nodeId: string;
  readonly apiUrl: string;
  readonly resync: ResyncController;
  readonly api: AgentApiServer;
}

export interface RunningDemo {
  readonly cluster: SimCluster;
  /** Member 1, 2, 3 in order. */
  readonly members: readonly DemoMember[];
  stop(): Promise<void>;
}

/** The node id member `n` of the demo cluster registers as. */
export const demoNodeId = (n: number) => `demo-${n}`;

export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const { log } = options;
  let nats: NatsServer | null = null;
  if ((options.nats ?? "auto") === "auto" && natsServerBinary() !== null) {
    try {
      nats = await NatsServer.start();
    } catch (error) {
      log.warn({ err: error }, "demo: nats-server did not start; using the in-process order");
    }
  }
  const natsUrl = nats?.url;
  // The demo's three agents sign their envelopes like a real cluster (issue 15).
  const keys = ephemeralClusterKeys([1, 2, 3]);
  const cluster = await SimCluster.start({
    dir: join(options.dataDir, "cluster"),
    nodes: 3,
    log: log.child({ part: "clusterlog" }),
    // Real kernel timings: 15 s request timeout, 250 ms remote-recovering window.
    ...(natsUrl
      ? {
          busFor: (node: number) =>
            createClusterBusFromOptions({
              nodeId: node,
              natsUrl,
              cluster: "demo",
              memberKeys: keys.get(node)!,
              logger: log.child({ part: "jetstream", node }),
            }),
        }
      : {}),
  });
  log.info(
    { order: natsUrl ? `NATS JetStream (${natsUrl})` : "in-process" },
    natsUrl
      ? "demo cluster ordered over NATS JetStream"
      : "demo cluster ordered in-process (nats-server not installed)",
  );
  for (const spec of DEMO_MIRRORS) await cluster.addMirror(spec);
  const all = [...cluster.mirrors.values()].flat();
  const load = new WriteLoad(all, { writers: 6, bytes: 4096, pauseMs: 5 });
  log.info(
    { mirrors: DEMO_MIRRORS.map((m) => `${m.name}:${m.regions}`), nodes: 3 },
    "demo cluster running: simulated mirrors under write load",
  );

  let db: IngestPool | null = null;
  if (options.databaseUrl) db = createIngestPool(options.databaseUrl);
  const startedAt = new Date();
  const order = natsUrl ? ("jetstream" as const) : ("in-process" as const);

  const startMember = async (node: number, index: number) => {
    const nodeId = demoNodeId(node);
    const memberLog = log.child({ node: nodeId });
    const server = cluster.agents.get(node)!.server;
    let store: SampleStore | undefined;
    const events = new EventPipeline({
      pool: db,
      nodeId,
      spoolPath: join(options.dataDir, `events-${node}.spool`),
      spoolMaxBytes: 16 * 1024 * 1024,
      log: memberLog,
      beforeWrite: async () => {
        await store?.register();
      },
    });
    await events.start();
    const resync = new ResyncController({
      server,
      nodeId,
      events,
      kick: (uuid) => cluster.suspendResume(uuid.replace(/^LVM-sim-/, "")),
      sampleIntervalMs: 1000,
      simulated: true,
      // Legs and their health as this member's simulated kernel reports them.
      inventory: new SimMirrorInventory(cluster, server.nodeId),
    });
    resync.start();
    const api = await startApiServer({
      host: options.host,
      port: index === 0 ? options.port : 0,
      token: options.token,
      log: memberLog,
      services: {
        nodeInfo: () => ({
          nodeId,
          hostname: `${hostname()} (simulated cluster member ${node})`,
          agentVersion,
          kernelRelease: release(),
          root: "/",
          startedAt,
          sampleIntervalMs: options.sampleIntervalMs,
        }),
        readKhugepaged: async () => {
          throw new Error("the demo cluster has no khugepaged");
        },
        resync,
        membership: () => ({
          nodeId: server.nodeId,
          ...server.membership(),
          order: { kind: order, connected: true },
        }),
      },
    });
    const apiUrl = `http://${options.host}:${api.port}`;
    if (db) {
      store = new SampleStore(
        db,
        {
          id: nodeId,
          hostname: `${hostname()}-demo-${node}`,
          apiUrl,
          agentVersion,
          kernelRelease: release(),
          sampleIntervalMs: options.sampleIntervalMs,
          startedAt,
        },
        memberLog,
      );
      await store.register().catch((error) => memberLog.warn({ err: error }, "cannot register"));
    }
    // The membership changes this member applied (its own join included), as an agent
    // emits them (agent.ts): into its events, keyed by the order's seq.
    const emitted = new Set<string>();
    const emitMembership = () => {
      const fresh = membershipEvents(server.membership().recent, {
        nodeId,
        self: server.nodeId,
        now: Date.now(),
      }).filter((e) => !emitted.has(e.key));
      for (const e of fresh) emitted.add(e.key);
      if (fresh.length > 0) events.emit(fresh);
    };
    emitMembership();
    const sample = async () => {
      emitMembership();
      const points: [string, number][] = [];
      for (const spec of DEMO_MIRRORS) {
        const group = server.clusterLog.state.groups.get(`LVM-sim-${spec.name}`);
        if (!group) continue;
        points.push([`mirror.${spec.name}.regions_in_sync`, group.syncBits.count]);
        points.push([`mirror.${spec.name}.regions`, group.regionCount]);
        points.push([`mirror.${spec.name}.regions_marked`, group.markers.size]);
        points.push([`mirror.${spec.name}.recovering_region`, group.recoveringRegion]);
      }
      if (index === 0) points.push(["demo.writes_acked", load.acked]);
      await store?.record({ at: new Date(), points }).catch(() => {});
    };
    const sampler = setInterval(() => void sample(), options.sampleIntervalMs);
    sampler.unref();
    log.info({ node: nodeId, apiUrl }, "demo cluster member API listening (resync control)");
    return {
      member: { nodeId, apiUrl, resync, api } satisfies DemoMember,
      async stop() {
        clearInterval(sampler);
        resync.stop();
        await api.close();
        return async () => {
          await store?.flush();
          await events.stop();
        };
      },
    };
  };
  const members: Awaited<ReturnType<typeof startMember>>[] = [];
  for (const [index, node] of [1, 2, 3].entries()) members.push(await startMember(node, index));
  const first = members[0]!.member;

  let round = 0;
  const resyncTimer =
    options.resyncEveryMs > 0
      ? setInterval(() => {
          const spec = DEMO_MIRRORS[round++ % DEMO_MIRRORS.length]!;
          const from = Math.floor(spec.regions / 4);
          first.resync
            .startResync({
              uuid: `LVM-sim-${spec.name}`,
              first: from,
              last: from + Math.floor(spec.regions / 3),
              throttle: Math.max(4, Math.floor(spec.regions / 40)),
              actor: "demo",
            })
            .catch((error) => log.info({ err: error }, "demo: no resync started this round"));
        }, options.resyncEveryMs)
      : null;
  resyncTimer?.unref();

  return {
    cluster,
    members: members.map((m) => m.member),
    async stop() {
      if (resyncTimer) clearInterval(resyncTimer);
      const finish = [];
      for (const m of members) finish.push(await m.stop());
      await load.stop().catch(() => {});
      await cluster.close();
      await nats?.stop();
      for (const f of finish) await f();
      await db?.end();
    },
  };
}
