import "server-only";
import { env } from "~/env";
import { createAgentDirectory } from "../agents";
import { AlertDelivery, installAlertDelivery } from "../alerting";
import { db } from "../db";
import { installMirrorWatch, MirrorWatch } from "../mirror-watch";
import { defaultRetentionPolicy } from "../retention";
import { startBackgroundOnce } from "./background";

/** Called once at server start (instrumentation.ts): the configured watch and retention. */
export function startServerBackground(): void {
  const e = env();
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
  startBackgroundOnce({
    delivery: delivering ? { delivery, dashboardUrl: e.MIRRORPLANE_PUBLIC_URL } : null,
    db: db(),
    agents: createAgentDirectory(e.MIRRORPLANE_AGENT_TOKEN),
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
}
