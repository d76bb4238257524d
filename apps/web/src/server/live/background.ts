import type { Db } from "@mirrorplane/db";
import type { AgentDirectory } from "../agents";
import { type AlertDelivery, alarmAlert, criticalEventAlerts, currentSilences } from "../alerting";
import { collect } from "../domain/fleet";
import { clusterSummary } from "../domain/overview";
import { observations } from "../domain/sync-observer";
import type { MirrorWatch } from "../mirror-watch";
import { runRetention, type TRetentionPolicy } from "../retention";

/**
 * The web process's background work, beside the live hub (which polls only while a tab
 * listens): what must happen whether or not anyone looks.
 *
 * - the mirror watch (every `watchIntervalMs`): asks the agents for their mirrors' sync
 *   state, so a mirror's time without redundancy is recorded from when it began, not from
 *   when someone opened the overview, and the ETA history is there when they do;
 * - event retention (first `retentionFirstMs` after start, then every
 *   `retentionIntervalMs`): server/retention.ts, audited.
 *
 * Each job skips a tick while its previous run is still going; errors are logged and the
 * next tick tries again. Timers are unref'd: they never keep the process alive.
 */
export interface BackgroundOptions {
  db: Db;
  agents: AgentDirectory;
  watch: MirrorWatch;
  retention: TRetentionPolicy;
  watchIntervalMs?: number;
  retentionFirstMs?: number;
  retentionIntervalMs?: number;
  now?: () => Date;
  log?: (line: string) => void;
  /** Alert delivery (server/alerting.ts): each watch round also assesses and delivers. */
  delivery?: { delivery: AlertDelivery; dashboardUrl: string } | null;
}

export interface Background {
  /** Runs the mirror watch once (also what each tick does). */
  watchOnce(): Promise<void>;
  /** Runs retention once (also what each tick does). */
  retainOnce(): Promise<void>;
  stop(): void;
}

export function startBackground(options: BackgroundOptions): Background {
  const now = options.now ?? (() => new Date());
  const log = options.log ?? ((line: string) => console.log(line));
  let watching = false;
  let retaining = false;
  const watchOnce = async () => {
    if (watching) return;
    watching = true;
    try {
      if (options.delivery) {
        await deliverRound(options, now());
        return;
      }
      const { mirrors } = await collect({
        db: options.db,
        agents: options.agents,
        now,
      });
      await options.watch.observe(options.db, observations(mirrors.values()), now());
    } catch (error) {
      log(JSON.stringify({ msg: "mirror watch failed", error: (error as Error).message }));
    } finally {
      watching = false;
    }
  };
  const retainOnce = async () => {
    if (retaining) return;
    retaining = true;
    try {
      await runRetention(options.db, options.retention, now(), log);
    } catch {
      // runRetention logged and audited the failure; the next tick tries again.
    } finally {
      retaining = false;
    }
  };
  const timers: Array<ReturnType<typeof setInterval>> = [];
  const watchTimer = setInterval(() => void watchOnce(), options.watchIntervalMs ?? 15_000);
  watchTimer.unref();
  timers.push(watchTimer);
  const first = setTimeout(() => {
    void retainOnce();
    const t = setInterval(() => void retainOnce(), options.retentionIntervalMs ?? 3_600_000);
    t.unref();
    timers.push(t);
  }, options.retentionFirstMs ?? 60_000);
  first.unref();
  return {
    watchOnce,
    retainOnce,
    stop() {
      clearTimeout(first);
      for (const t of timers) clearInterval(t);
    },
  };
}

/**
 * One alerting round: the overview's own assessment (it collects, records the observations
 * and assesses, so the alarms delivered are the ones shown), plus unacknowledged critical
 * events, minus silences.
 */
async function deliverRound(options: BackgroundOptions, at: Date): Promise<void> {
  const summary = await clusterSummary({
    db: options.db,
    agents: options.agents,
    now: () => at,
    user: { id: "system", username: "alerting", role: "viewer" },
  });
  const url = options.delivery!.dashboardUrl.replace(/\/$/, "");
  const alerts = [
    ...summary.alarms.map((a) =>
      alarmAlert({ ...a, since: a.since === null ? null : a.since.getTime() }, at, url),
    ),
    ...(await criticalEventAlerts(options.db, at, url)),
  ];
  const result = await options.delivery!.delivery.round(
    alerts,
    await currentSilences(options.db, at),
    at,
  );
  for (const e of result.errors)
    (options.log ?? console.log)(JSON.stringify({ msg: "alert delivery failed", error: e }));
}
