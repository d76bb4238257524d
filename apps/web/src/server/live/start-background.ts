import "server-only";
import { env } from "~/env";
import { createAgentDirectory } from "../agents";
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
  startBackgroundOnce({
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
