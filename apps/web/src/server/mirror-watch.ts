import type { Db } from "@mirrorplane/db";
import { formatDuration } from "~/lib/eta";
import { defaultAlarmConfig, type TAlarmConfig, type TSyncPoint } from "./alarms";

/**
 * What the control plane has seen of each mirror's sync state, for the progress-aware
 * alarms (alarms.ts):
 *
 * - the recent observations (in memory, per web process: enough for rates and ETA
 *   projections; after a restart the ETA-slip rule needs a few minutes of new
 *   observations before it can say anything, and says nothing until then);
 * - since when a mirror has been without redundancy, kept in Postgres as `redundancy`
 *   events (`lost` when it is first seen out of sync, `restored` when it is seen in sync
 *   again), so the duration survives a restart of the web app and is shared by every web
 *   process. The episode starts at the start of the mirror's running resync when there is
 *   one (a resync clears the range's sync bits at its start, so that is when redundancy
 *   went), else at the first observation out of sync ("at least since").
 *
 * Observations come from the overview (each summary) and from the background watch
 * (live/background.ts, every 15 s), so an episode is recorded even while nobody looks.
 */

export interface TMirrorObservation {
  uuid: string;
  inSync: number;
  regionCount: number;
  resyncId: string | null;
  /** A node holding the mirror (the lowest id): the events are recorded under it. */
  nodeId: string | null;
}

export type TExposureBasis = "resync-start" | "first-observed";

export interface TExposure {
  /** Out of sync since (the `lost` event's time). */
  since: Date;
  basis: TExposureBasis;
}

const historyMs = 30 * 60_000;
const minSpacingMs = 2_000;

export class MirrorWatch {
  readonly config: TAlarmConfig;
  readonly #history = new Map<string, TSyncPoint[]>();

  constructor(config: Partial<TAlarmConfig> = {}) {
    this.config = { ...defaultAlarmConfig, ...config };
  }

  /** Observations of `uuid`, oldest first. */
  history(uuid: string): readonly TSyncPoint[] {
    return this.#history.get(uuid) ?? [];
  }

  /**
   * Records one look at these mirrors: keeps the observation, and opens or closes the
   * mirror's without-redundancy episode in Postgres. Returns, per mirror out of sync,
   * since when.
   */
  async observe(
    db: Db,
    observations: readonly TMirrorObservation[],
    now: Date,
  ): Promise<Map<string, TExposure>> {
    const at = now.getTime();
    for (const o of observations) {
      const points = this.#history.get(o.uuid) ?? [];
      const last = points.at(-1);
      // Two looks a moment apart (a summary racing the background watch) add nothing.
      if (!last || at - last.at >= minSpacingMs || at < last.at) {
        points.push({ at, inSync: o.inSync, regionCount: o.regionCount });
        while (points.length > 0 && points[0]!.at < at - historyMs) points.shift();
        this.#history.set(o.uuid, points);
      }
    }
    return recordRedundancy(db, observations, now, (uuid) => this.#outOfSyncStreakStart(uuid));
  }

  /** The first observation of the current unbroken run out of sync, seen by this process. */
  #outOfSyncStreakStart(uuid: string): number | null {
    const points = this.history(uuid);
    let start: number | null = null;
    for (let i = points.length - 1; i >= 0; i--) {
      const p = points[i]!;
      if (p.inSync >= p.regionCount) break;
      start = p.at;
    }
    return start;
  }
}

interface LatestRow {
  mirror: string;
  id: bigint;
  occurred_at: Date;
  what: string | null;
  basis: string | null;
}

async function latestRedundancyEvents(db: Db, uuids: string[]): Promise<Map<string, LatestRow>> {
  if (uuids.length === 0) return new Map();
  // One index walk per mirror (events by mirror, newest first), stopping at its latest
  // redundancy event.
  const rows = await db.$queryRaw<LatestRow[]>`
    SELECT m.mirror, e.id, e.occurred_at, e.what, e.basis
      FROM unnest(${uuids}::text[]) AS m(mirror)
      CROSS JOIN LATERAL (
        SELECT id, occurred_at, data->>'what' AS what, data->>'basis' AS basis
          FROM events
         WHERE kind = 'redundancy' AND mirror = m.mirror
         ORDER BY occurred_at DESC, id DESC
         LIMIT 1
      ) e`;
  return new Map(rows.map((r) => [r.mirror, r]));
}

function exposureOf(row: LatestRow): TExposure {
  return {
    since: row.occurred_at,
    basis: row.basis === "resync-start" ? "resync-start" : "first-observed",
  };
}

/**
 * Opens (`lost`) or closes (`restored`) each observed mirror's without-redundancy
 * episode. Opening takes a per-mirror advisory lock and looks again inside it, so two
 * web processes (or a summary and the background watch) never open one episode twice;
 * closing is idempotent by its key (the `lost` event it closes).
 */
export async function recordRedundancy(
  db: Db,
  observations: readonly TMirrorObservation[],
  now: Date,
  streakStart: (uuid: string) => number | null = () => null,
): Promise<Map<string, TExposure>> {
  const latest = await latestRedundancyEvents(
    db,
    observations.map((o) => o.uuid),
  );
  const out = new Map<string, TExposure>();
  for (const o of observations) {
    const row = latest.get(o.uuid);
    const open = row?.what === "lost";
    const outOfSync = o.inSync < o.regionCount;
    if (outOfSync && open) {
      out.set(o.uuid, exposureOf(row));
    } else if (outOfSync) {
      out.set(o.uuid, await openEpisode(db, o, now, row ?? null, streakStart(o.uuid)));
    } else if (open) {
      const seconds = Math.max(0, (now.getTime() - row.occurred_at.getTime()) / 1000);
      await db.event.createMany({
        data: [
          {
            idempotencyKey: `redundancy:${o.uuid}:restored:${row.id}`,
            nodeId: o.nodeId,
            kind: "redundancy",
            severity: "info",
            source: "control-plane",
            occurredAt: now,
            message: `${o.uuid} has redundancy again, after ${formatDuration(seconds)} without`,
            mirror: o.uuid,
            data: { what: "restored", since: row.occurred_at.toISOString(), seconds },
          },
        ],
        skipDuplicates: true,
      });
    }
  }
  return out;
}

async function openEpisode(
  db: Db,
  o: TMirrorObservation,
  now: Date,
  previous: LatestRow | null,
  streakStart: number | null,
): Promise<TExposure> {
  let since = now.getTime();
  let basis: TExposureBasis = "first-observed";
  if (streakStart !== null && streakStart < since) since = streakStart;
  if (o.resyncId !== null) {
    const [started] = await db.$queryRaw<Array<{ at: Date | null }>>`
      SELECT min(occurred_at) AS at FROM events
       WHERE mirror = ${o.uuid} AND kind = 'resync' AND data->>'resyncId' = ${o.resyncId}`;
    if (started?.at && started.at.getTime() <= since) {
      since = started.at.getTime();
      basis = "resync-start";
    }
  }
  // Never before the end of the previous episode.
  if (previous && previous.occurred_at.getTime() > since) since = previous.occurred_at.getTime();
  return db.$transaction(async (tx) => {
    await tx.$queryRaw`SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext(${`mirrorplane:redundancy:${o.uuid}`}))`;
    const again = (await latestRedundancyEvents(tx as unknown as Db, [o.uuid])).get(o.uuid);
    if (again?.what === "lost") return exposureOf(again);
    await tx.event.create({
      data: {
        idempotencyKey: `redundancy:${o.uuid}:lost:${since}`,
        nodeId: o.nodeId,
        kind: "redundancy",
        severity: "notice",
        source: "control-plane",
        occurredAt: new Date(since),
        message: `${o.uuid} is without redundancy: ${(o.regionCount - o.inSync).toLocaleString("en-US")} of ${o.regionCount.toLocaleString("en-US")} regions out of sync`,
        mirror: o.uuid,
        data: {
          what: "lost",
          basis,
          inSync: o.inSync,
          regionCount: o.regionCount,
          resyncId: o.resyncId,
        },
      },
      select: { id: true },
    });
    return { since: new Date(since), basis };
  });
}

// One watch per server process (Next may load this module more than once: the route
// handlers and instrumentation are separate bundles).
const g = globalThis as unknown as { mirrorplaneMirrorWatch?: MirrorWatch };

export function mirrorWatch(): MirrorWatch {
  g.mirrorplaneMirrorWatch ??= new MirrorWatch();
  return g.mirrorplaneMirrorWatch;
}

/** Installs the process's watch (with the configured thresholds); tests install fresh ones. */
export function installMirrorWatch(watch: MirrorWatch): MirrorWatch {
  g.mirrorplaneMirrorWatch = watch;
  return watch;
}
