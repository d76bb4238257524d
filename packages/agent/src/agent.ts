import { hostname, release } from "node:os";
import { createIngestPool, type IngestPool } from "@mirrorplane/db/ingest";
import type { Logger } from "pino";
import { type AgentApiServer, startApiServer } from "./api/server.ts";
import type { AgentServices, NodeInfo } from "./api/trpc.ts";
import { khugepagedSeries, readKhugepaged } from "./collectors/khugepaged.ts";
import { defaultApiUrl, type TAgentConfig } from "./config/config.ts";
import { loadNodeId } from "./identity.ts";
import { SampleStore } from "./store.ts";
import { agentVersion } from "./version.ts";

export interface RunningAgent {
  nodeId: string;
  apiUrl: string;
  /** Drains: stops sampling, writes what is pending, closes the API and the database. */
  stop(): Promise<void>;
}

/** Starts the agent daemon: identity, API, and the khugepaged collector writing samples. */
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
  const services: AgentServices = {
    nodeInfo: () => info,
    readKhugepaged: () => readKhugepaged(config.root),
  };

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
  });
  const apiUrl = defaultApiUrl({ ...config, port: api.port });
  log.info({ nodeId, apiUrl, root: config.root }, "agent API listening");

  let db: IngestPool | undefined;
  let store: SampleStore | undefined;
  if (config.databaseUrl) {
    db = createIngestPool(config.databaseUrl);
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
    log.warn("no database URL: samples are served by the API but not stored");
  }

  let stopping = false;
  let inFlight: Promise<void> = Promise.resolve();
  const sample = async () => {
    try {
      const snapshot = await readKhugepaged(config.root);
      await store?.record({ at: new Date(), points: khugepagedSeries(snapshot) });
    } catch (error) {
      log.error({ err: error }, "khugepaged sample failed");
    }
  };
  inFlight = sample();
  const timer = setInterval(() => {
    if (stopping) return;
    inFlight = inFlight.then(sample);
  }, config.sampleIntervalMs);

  return {
    nodeId,
    apiUrl,
    async stop() {
      stopping = true;
      clearInterval(timer);
      await inFlight;
      await api.close();
      await store?.flush();
      if (store?.pendingBatches)
        log.warn({ pending: store.pendingBatches }, "samples not written at shutdown");
      await db?.end();
      log.info("agent stopped");
    },
  };
}
