import type { Db } from "@mirrorplane/db";

/**
 * Event retention (DASHBOARD.md complaint 6: history that disappears — ours must not
 * grow without bound either, and must never lose what operators still work on).
 *
 * An event older than `retentionDays` is deleted, except:
 *
 * - what operators still work on: an event of severity warning, error or critical that is
 *   unacknowledged (never acknowledged, or its acknowledgement lapsed — then it counts as
 *   open again, events router) and younger than `openMaxDays`. These are the open part of
 *   an incident (an incident is open while it has such events); they stay until someone
 *   acknowledges them, or until the hard cap, so nothing is kept for ever. Debug, info
 *   and notice events (progress, tunable writes, …) are context, not work: they go at the
 *   retention age whether or not anyone acknowledged them.
 * - the `redundancy`/`lost` event that opened a mirror's current without-redundancy
 *   episode (mirror-watch.ts): the alarm's duration is measured from it.
 *
 * Deletion runs in batches of `batchSize` rows, each its own short statement (row locks
 * on that batch only, `SKIP LOCKED` so it never waits on an operator's acknowledgement),
 * walking the (occurred_at, id) index from the oldest, with a pause between batches;
 * one run stops after `maxBatches` and the next run carries on.
 */
export interface TRetentionPolicy {
  /** 0 turns retention off. */
  retentionDays: number;
  /** Unacknowledged warning-or-worse events are kept up to this age (≥ retentionDays). */
  openMaxDays: number;
  batchSize: number;
  maxBatches: number;
  /** Pause between batches, so other writers and readers get the table in between. */
  pauseMs: number;
}

export const defaultRetentionPolicy: TRetentionPolicy = {
  retentionDays: 90,
  openMaxDays: 365,
  batchSize: 2_000,
  maxBatches: 500,
  pauseMs: 50,
};

export interface TRetentionRun {
  deleted: number;
  batches: number;
  cutoff: Date;
  openCutoff: Date;
  /** False when the run stopped at `maxBatches` with more to delete. */
  complete: boolean;
}

const day = 86_400_000;

/** Deletes expired events in batches; see the module comment for what is kept. */
export async function pruneEvents(
  db: Db,
  policy: TRetentionPolicy,
  now: Date,
): Promise<TRetentionRun> {
  const cutoff = new Date(now.getTime() - policy.retentionDays * day);
  const openCutoff = new Date(
    now.getTime() - Math.max(policy.openMaxDays, policy.retentionDays) * day,
  );
  const run: TRetentionRun = { deleted: 0, batches: 0, cutoff, openCutoff, complete: true };
  if (policy.retentionDays <= 0) return run;
  for (;;) {
    if (run.batches >= policy.maxBatches) {
      run.complete = false;
      break;
    }
    const deleted = await db.$executeRaw`
      DELETE FROM events WHERE id IN (
        SELECT e.id FROM events e
         WHERE e.occurred_at < ${cutoff}
           -- (each exception is coalesced: a NULL must never keep or delete a row by accident)
           AND NOT coalesce(
             e.occurred_at >= ${openCutoff}
             AND e.severity IN ('warning', 'error', 'critical')
             AND (e.acknowledged_at IS NULL OR e.ack_expires_at <= ${now}),
             false)
           AND NOT coalesce(
             e.kind = 'redundancy' AND e.data->>'what' = 'lost'
             AND NOT EXISTS (
               SELECT 1 FROM events r
                WHERE r.kind = 'redundancy' AND r.mirror = e.mirror
                  AND (r.occurred_at, r.id) > (e.occurred_at, e.id)
             ),
             false)
         ORDER BY e.occurred_at, e.id
         LIMIT ${policy.batchSize}
         FOR UPDATE SKIP LOCKED
      )`;
    run.batches++;
    run.deleted += deleted;
    if (deleted < policy.batchSize) break;
    if (policy.pauseMs > 0) await new Promise((r) => setTimeout(r, policy.pauseMs));
  }
  return run;
}

/**
 * One retention run as the system: prunes, then writes what it removed to the audit log
 * (one row per run that removed something) and one log line per run.
 */
export async function runRetention(
  db: Db,
  policy: TRetentionPolicy,
  now: Date,
  log: (line: string) => void = (line) => console.log(line),
): Promise<TRetentionRun> {
  let run: TRetentionRun;
  try {
    run = await pruneEvents(db, policy, now);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log(JSON.stringify({ msg: "event retention failed", error: message }));
    await db.auditAction
      .create({
        data: {
          actor: "system",
          action: "events.retention",
          target: "events",
          params: policyParams(policy),
          outcome: "failed",
          detail: message,
        },
        select: { id: true },
      })
      .catch(() => {});
    throw error;
  }
  const detail = `deleted ${run.deleted} events older than ${run.cutoff.toISOString()} in ${run.batches} batch(es)${run.complete ? "" : "; more remain for the next run"}`;
  log(
    JSON.stringify({
      msg: "event retention",
      deleted: run.deleted,
      batches: run.batches,
      cutoff: run.cutoff,
      complete: run.complete,
    }),
  );
  if (run.deleted > 0) {
    await db.auditAction.create({
      data: {
        actor: "system",
        action: "events.retention",
        target: "events",
        params: { ...policyParams(policy), cutoff: run.cutoff.toISOString(), deleted: run.deleted },
        outcome: "ok",
        detail,
      },
      select: { id: true },
    });
  }
  return run;
}

function policyParams(policy: TRetentionPolicy) {
  return {
    retentionDays: policy.retentionDays,
    openMaxDays: policy.openMaxDays,
    batchSize: policy.batchSize,
  };
}
