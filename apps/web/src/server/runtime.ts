import "server-only";
import { env } from "~/env";
import { type AgentDirectory, createAgentDirectory } from "./agents";
import { AlertDelivery, installAlertDelivery } from "./alerting";
import { db } from "./db";
import { type Background, startBackground } from "./live/background";
import { LiveHub } from "./live/live-hub";
import { installMirrorWatch, MirrorWatch } from "./mirror-watch";
import { defaultRetentionPolicy } from "./retention";

/**
 * The web process's composition root: everything long-lived the server runs, built once
 * per process from the configuration. `instrumentation.ts` starts it when the server
 * starts; the tRPC route handler takes the agent directory and the live hub from it.
 *
 * - the agent directory (one contract client per agent, with the cluster token);
 * - the live hub (server/live/live-hub.ts: reads Postgres and asks the agents for their
 *   mirrors only while a tab listens);
 * - the mirror watch and alert delivery (installed for the overview and the alerts page);
 * - the background jobs (server/live/background.ts: mirror watch, alerting, retention).
 */
export interface ServerRuntime {
  agents: AgentDirectory;
  hub: LiveHub;
  background: Background;
}

// Once per server process: Next loads this module in more than one bundle (instrumentation
// and the route handlers), so the runtime is kept on globalThis.
const g = globalThis as unknown as { mirrorplaneRuntime?: ServerRuntime };

function build(): ServerRuntime {
  const e = env();
  const agents = createAgentDirectory(e.MIRRORPLANE_AGENT_TOKEN);
  const watch = installMirrorWatch(
    new MirrorWatch({
      withoutRedundancyMs: e.MIRRORPLANE_ALARM_WITHOUT_REDUNDANCY_MINUTES * 60_000,
    }),
  );
  const delivering = e.MIRRORPLANE_ALERT_WEBHOOK_URL || e.MIRRORPLANE_ALERTMANAGER_URL;
  const delivery = installAlertDelivery(
    new AlertDelivery({
      webhookUrl: e.MIRRORPLANE_ALERT_WEBHOOK_URL ?? null,
      alertmanagerUrl: e.MIRRORPLANE_ALERTMANAGER_URL ?? null,
      intervalMs: 15_000,
    }),
  );
  const background = startBackground({
    delivery: delivering ? { delivery, dashboardUrl: e.MIRRORPLANE_PUBLIC_URL } : null,
    db: db(),
    agents,
    watch,
    retention: {
      ...defaultRetentionPolicy,
      retentionDays: e.MIRRORPLANE_EVENT_RETENTION_DAYS,
      openMaxDays: Math.max(
        e.MIRRORPLANE_EVENT_RETENTION_OPEN_DAYS,
        e.MIRRORPLANE_EVENT_RETENTION_DAYS,
      ),
    },
  });
  return { agents, hub: new LiveHub({ db: db(), agents }), background };
}

/** Builds and starts the runtime (once; later calls return the same one). */
export function startServerRuntime(): ServerRuntime {
  g.mirrorplaneRuntime ??= build();
  return g.mirrorplaneRuntime;
}

/** The process's runtime, for request handlers (started by instrumentation.ts). */
export function serverRuntime(): ServerRuntime {
  return startServerRuntime();
}
