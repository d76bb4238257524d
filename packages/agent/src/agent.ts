import { existsSync } from "node:fs";
import { hostname, release } from "node:os";
import { join } from "node:path";
import type { TSmart } from "@mirrorplane/contracts";
import { createIngestPool, type IngestPool, pruneSamples } from "@mirrorplane/db/ingest";
import type { Logger } from "pino";
import { type AgentApiServer, startApiServer } from "./api/server.ts";
import type { AgentServices, NodeInfo } from "./api/trpc.ts";
import { type RunningClusterLog, startClusterLogCommand } from "./clusterlog/command.ts";
import { dmsetupSuspendResume } from "./clusterlog/dmsetup.ts";
import { ResyncController } from "./clusterlog/resync-control.ts";
import { readDeviceStates } from "./collectors/devices.ts";
import { type HostState, hostEvents } from "./collectors/host-events.ts";
import { khugepagedSeries, readKhugepaged } from "./collectors/khugepaged.ts";
import { membershipEvents } from "./collectors/membership-events.ts";
import { memorySeries, readMemory } from "./collectors/memory.ts";
import { mirrorHealthEvents, mirrorsSeenAfter } from "./collectors/mirror-health.ts";
import { TunableWriter } from "./collectors/tunables.ts";
import { defaultApiUrl, type TAgentConfig } from "./config/config.ts";
import { DiskInventory } from "./disks/disk-inventory.ts";
import { diskIdentity, smartEvents } from "./disks/smart-events.ts";
import { MirrorMap } from "./events/mirror-map.ts";
import { EventPipeline } from "./events/pipeline.ts";
import { loadNodeId } from "./identity.ts";
import { KmsgFollower, readBootId } from "./kmsg/follower.ts";
import { type AgentMetrics, createAgentMetrics } from "./metrics.ts";
import { DmsetupMirrorInventory } from "./mirrors/dmsetup-inventory.ts";
import type { MirrorInfo } from "./mirrors/inventory.ts";
import { SampleStore } from "./store.ts";
import { agentVersion } from "./version.ts";

/**
 * How long a stop waits for Postgres (and the rest of the drain) before it keeps what is
 * left locally: within the 2 s a supervisor may give a SIGTERM (issue 14).
 */
const SHUTDOWN_BUDGET_MS = 1500;

/** Whether `work` settled within `ms` (it goes on regardless; a rejection counts as done). */
async function within(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const result = await Promise.race([
    settled,
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return result;
}

export interface RunningAgent {
  nodeId: string;
  apiUrl: string;
  /** The agent's Prometheus registry (served at `/metrics`): other parts add metrics here. */
  metrics: AgentMetrics;
  /** The event pipeline: `emit()` never blocks (the cluster-log path may use it). */
  events: EventPipeline;
  /** Drains: stops sampling, writes what is pending, closes the API and the database. */
  stop(): Promise<void>;
}

/**
 * Starts the agent daemon: identity, API (+ /metrics), the event pipeline with its spool,
 * the kernel-log follower, and the sysfs/procfs collectors writing samples and events.
 */
export async function startAgent(config: TAgentConfig, log: Logger): Promise<RunningAgent> {
  const nodeId = await loadNodeId(config.dataDir, config.nodeId);
  const startedAt = new Date();
  const info: NodeInfo = {
    nodeId,
    hostname: hostname(),
    agentVersion,
    kernelRelease: release(),
    root: config.root,
    startedAt,
    sampleIntervalMs: config.sampleIntervalMs,
  };
  const metrics = createAgentMetrics({ node: nodeId });
  const bootId = await readBootId(config.root);
  const mirrors = new MirrorMap(config.mirrors);
  // The pipeline exists before anything can report; its database comes once registered.
  let db: IngestPool | undefined;
  let store: SampleStore | undefined;
  if (config.databaseUrl) db = createIngestPool(config.databaseUrl);
  const events = new EventPipeline({
    pool: db ?? null,
    nodeId,
    spoolPath: join(config.dataDir, "events.spool"),
    spoolMaxBytes: config.spoolMaxBytes,
    batchSize: config.eventBatchSize,
    log,
    beforeWrite: async () => {
      await store?.register();
    },
    onEvent: (event) => metrics.countEvent(event),
  });
  await events.start();
  metrics.setPipeline(() => events.snapshot());
  const tunables = new TunableWriter(config.root, nodeId, (event) => events.emit(event));
  const sources: Record<string, boolean> = {};
  const services: AgentServices = {
    nodeInfo: () => info,
    readKhugepaged: () => readKhugepaged(config.root),
    setTunable: (input) => tunables.set(input),
    eventStatus: () => ({ pipeline: events.snapshot(), sources }),
  };

  // The cluster-log server (cmirrord's job) in this process, when configured: the kernel
  // is served on its socket and connector, and the API gets resync control. Its own
  // agent re-arms this host's kernels (dmsetup, `rearm`).
  let clusterLog: RunningClusterLog | null = null;
  let resync: ResyncController | null = null;
  if (config.clusterLog) {
    const clusterLogLog = log.child({ component: "clusterlog" });
    clusterLog = await startClusterLogCommand(
      {
        ...config.clusterLog,
        dataDir: config.clusterLog.dataDir ?? join(config.dataDir, "clusterlog"),
      },
      clusterLogLog,
      { metrics: metrics.registry },
    );
    resync = new ResyncController({
      server: clusterLog.server,
      nodeId,
      events,
      // Legs and their health from `dmsetup table/status` (fails soft: CTR facts only).
      inventory: new DmsetupMirrorInventory({ root: config.root }),
      // An operator resync re-arms this host's kernel; the other hosts' agents re-arm
      // theirs when the replicated state names them (rearm.ts).
      // A failed suspend/resume leaves the start in place: the hint guard holds the range
      // until the kernel is re-armed, and the rearmer retries.
      ...(clusterLog.rearmWithDmsetup
        ? {
            kick: async (uuid: string) => {
              const started = Date.now();
              await dmsetupSuspendResume(uuid).then(
                () =>
                  clusterLogLog.info(
                    { uuid, ms: Date.now() - started },
                    "resync start: re-armed, the mirror was suspended and resumed",
                  ),
                (error: Error) =>
                  clusterLogLog.warn({ uuid, err: error.message }, "resync start: no re-arm yet"),
              );
            },
          }
        : {}),
    });
    resync.start();
    services.resync = resync;
    const running = clusterLog;
    services.membership = () => {
      const order = running.order();
      return {
        nodeId: running.server.nodeId,
        ...running.server.membership(),
        order: {
          kind: order.kind,
          connected: order.kind === "in-process" || order.connected,
        },
      };
    };
  }

  // The disk inventory (issue 13): sysfs per call, SMART every smartIntervalMs and on
  // demand; a drive that starts failing becomes a device_failure event. Legs are placed on
  // disks from dmsetup, only where dm-mirror is loaded (a host without mirrors never runs it).
  const diskLegs = new DmsetupMirrorInventory({ root: config.root });
  const smartSeen = new Map<string, TSmart>();
  const disks = new DiskInventory({
    root: config.root,
    smartctl: config.smartctl,
    intervalMs: config.smartIntervalMs === 0 ? null : config.smartIntervalMs,
    mirrors: async () =>
      existsSync(join(config.root, "sys/module/dm_mirror"))
        ? diskLegs.list()
        : { mirrors: [], reason: "dm-mirror is not loaded on this host: no mirror legs" },
    onSmartRead: (inventory, read) => {
      metrics.setDisks(inventory);
      const roundDisks = inventory.disks.filter((d) => read.has(d.name));
      events.emit(smartEvents(smartSeen, roundDisks, { nodeId, now: Date.now() }));
      for (const d of roundDisks)
        if (d.smart.status !== "pending" && d.smart.status !== "unavailable")
          smartSeen.set(diskIdentity(d), d.smart);
    },
  });
  services.disks = disks;

  const first = await readKhugepaged(config.root);
  if (!first.available) {
    log.warn(
      { root: config.root },
      "no transparent_hugepage directory under root; khugepaged values will be empty",
    );
  }

  const api: AgentApiServer = await startApiServer({
    host: config.host,
    port: config.port,
    token: config.token,
    services,
    log,
    metrics: metrics.registry,
    metricsRequireToken: config.metricsRequireToken,
  });
  const apiUrl = defaultApiUrl({ ...config, port: api.port });
  log.info({ nodeId, apiUrl, root: config.root }, "agent API listening");

  if (db) {
    store = new SampleStore(
      db,
      {
        id: nodeId,
        hostname: info.hostname,
        apiUrl,
        agentVersion,
        kernelRelease: info.kernelRelease,
        sampleIntervalMs: config.sampleIntervalMs,
        startedAt,
      },
      log,
    );
    await store.register().catch((error) => log.error({ err: error }, "cannot register node yet"));
  } else {
    log.warn("no database URL: samples and events are served by the API but not stored");
  }

  // Probe every host source once, with one log line each (KERNEL-SOURCES §0: on many
  // machines most are absent, and that is normal).
  const firstMemory = await readMemory(config.root);
  const firstDevices = await readDeviceStates(config.root);
  Object.assign(sources, {
    khugepaged: first.available,
    memoryFailureCounters: firstMemory.present.memoryFailure,
    hardwareCorrupted: firstMemory.present.meminfo,
    edac: firstMemory.present.edac,
    pmem: firstMemory.pmem.length > 0,
    nd: firstMemory.present.nd,
    dax: firstMemory.present.dax,
    deviceStates: firstDevices.length > 0,
  });
  for (const [source, path] of [
    ["memoryFailureCounters", "sys/devices/system/node/node*/memory_failure"],
    ["hardwareCorrupted", "proc/meminfo HardwareCorrupted"],
    ["edac", "sys/devices/system/edac/mc"],
    ["pmem", "sys/block/pmem*, sys/bus/nd/devices/region*"],
    ["dax", "sys/bus/dax"],
    ["deviceStates", "sys/class/nvme/*/state, sys/block/sd*/device/state"],
  ] as const)
    log.info(
      { source, path, root: config.root },
      `source ${source}: ${sources[source] ? "available" : "absent"}`,
    );
  let kmsg: KmsgFollower | undefined;
  if (config.kmsg) {
    kmsg = new KmsgFollower({
      root: config.root,
      nodeId,
      cursorPath: join(config.dataDir, "kmsg-cursor.json"),
      sink: events,
      log,
      pollMs: config.kmsgPollMs,
      coalesceWindowMs: config.coalesceWindowMs,
      mirrors,
    });
    sources.kmsg = await kmsg.start();
    log.info(
      { source: "kmsg", path: kmsg.path },
      `source kmsg: ${sources.kmsg ? "available" : "absent (or not readable)"}`,
    );
    if (!sources.kmsg) kmsg = undefined;
  } else {
    sources.kmsg = false;
    log.info({ source: "kmsg" }, "source kmsg: disabled by configuration");
  }
  let host: HostState | null = null;
  const pollHost = async (memory = firstMemory, devices = firstDevices) => {
    const next: HostState = { memory, devices };
    events.emit(hostEvents(host, next, { nodeId, bootId, now: Date.now(), mirrors }));
    host = next;
    metrics.setMemory(memory);
  };
  await pollHost();
  // dm-raid1's leg health characters (mirror-health.ts): only where dm-mirror is loaded,
  // so a host without mirrors never runs dmsetup.
  const legHealth = new DmsetupMirrorInventory({ root: config.root, cacheMs: 0 });
  let mirrorsSeen: MirrorInfo[] | null = null;
  const pollMirrorHealth = async () => {
    if (!existsSync(join(config.root, "sys/module/dm_mirror"))) return;
    const { mirrors: now, reason } = await legHealth.list();
    if (reason !== null) return;
    events.emit(mirrorHealthEvents(mirrorsSeen, now, { nodeId, bootId, now: Date.now() }));
    mirrorsSeen = mirrorsSeenAfter(mirrorsSeen, now);
  };
  await pollMirrorHealth();
  // Membership changes as this member applied them (issue 14), into the event pipeline:
  // the dashboard and Postgres see every member's account (keys: the order's seq).
  const membershipEmitted = new Set<string>();
  const emitMembership = () => {
    if (!clusterLog) return;
    const fresh = membershipEvents(clusterLog.server.membership().recent, {
      nodeId,
      self: clusterLog.server.nodeId,
      now: Date.now(),
    }).filter((e) => !membershipEmitted.has(e.key));
    for (const e of fresh) membershipEmitted.add(e.key);
    if (membershipEmitted.size > 1000) membershipEmitted.clear();
    if (fresh.length > 0) events.emit(fresh);
  };
  emitMembership();
  disks.start();

  let stopping = false;
  let inFlight: Promise<void> = Promise.resolve();
  const sample = async () => {
    try {
      const [snapshot, memory, devices] = await Promise.all([
        readKhugepaged(config.root),
        readMemory(config.root),
        readDeviceStates(config.root),
      ]);
      metrics.setKhugepaged(snapshot);
      await pollHost(memory, devices);
      await pollMirrorHealth();
      emitMembership();
      await store?.record({
        at: new Date(),
        points: [...khugepagedSeries(snapshot), ...memorySeries(memory)],
      });
    } catch (error) {
      log.error({ err: error }, "sample failed");
    }
  };
  inFlight = sample();
  const timer = setInterval(() => {
    if (stopping) return;
    inFlight = inFlight.then(sample);
  }, config.sampleIntervalMs);

  // Retention and down-sampling of this node's samples.
  const prune = async () => {
    if (!db) return;
    const now = Date.now();
    try {
      const result = await pruneSamples(db, {
        nodeId,
        deleteBefore: new Date(now - config.sampleRetentionDays * 86_400_000),
        downsampleBefore: new Date(now - config.sampleRawRetentionHours * 3_600_000),
        bucketSeconds: config.sampleDownsampleSeconds,
      });
      if (result.deleted + result.downsampled > 0) log.info(result, "samples pruned");
    } catch (error) {
      log.warn({ err: error }, "sample retention failed; retrying later");
    }
  };
  const retentionTimer = setInterval(() => {
    if (!stopping) inFlight = inFlight.then(prune);
  }, config.retentionIntervalMs);
  retentionTimer.unref();

  return {
    nodeId,
    apiUrl,
    metrics,
    events,
    async stop() {
      // Issue 14: SIGTERM exits within 2 s whatever Postgres is doing. Postgres gets what
      // is left of this budget; what it did not take is kept (events in the spool) or
      // reported (samples, the kernel-log cursor), never waited for.
      const started = Date.now();
      const deadline = started + SHUTDOWN_BUDGET_MS;
      const left = () => Math.max(0, deadline - Date.now());
      stopping = true;
      clearInterval(timer);
      clearInterval(retentionTimer);
      if (!(await within(api.close(), left())))
        log.warn("agent API: requests still open at shutdown were not answered");
      resync?.stop();
      const disksStopped = disks.stop();
      // The cluster-log server bounds its own stop (about 1 s with NATS unreachable); it
      // runs beside the database's drain, not before it.
      const clusterLogStopped = clusterLog?.stop();
      if (kmsg && !(await within(kmsg.stop(), left())))
        log.warn(
          "kernel log cursor not saved: the next start reads the last records again (their events are stored once)",
        );
      const sampled = await within(inFlight, left());
      if (sampled && store) await within(store.flush(), left());
      // At least a moment for the last batch, even when the steps above used the budget.
      const { drained, kept } = await events.stop({ timeoutMs: Math.max(200, left()) });
      if (!drained)
        log.warn(
          { kept, waitedMs: Date.now() - started },
          "the database did not answer in time: events kept in the spool instead",
        );
      const pending = events.snapshot();
      if (pending.spoolEvents > 0)
        log.warn({ spooled: pending.spoolEvents }, "events kept in the spool for the next start");
      if (store?.pendingBatches)
        log.warn({ pending: store.pendingBatches }, "samples not written at shutdown");
      await clusterLogStopped;
      await within(disksStopped, Math.max(50, left()));
      // A connection stuck in a query the database never answers cannot be ended
      // cleanly; the process exits anyway.
      if (db) await within(db.end(), Math.max(50, left()));
      log.info({ ms: Date.now() - started }, "agent stopped");
    },
  };
}
