import type { Db, Prisma } from "@mirrorplane/db";
import { z } from "zod";
import { acknowledgeEvents } from "../domain/acknowledge";
import { eventSelect, serializeEvent } from "../event-rows";
import { incidentExport, ZIncidentRef } from "../incident-export";
import { createTRPCRouter, operatorProcedure, protectedProcedure } from "../trpc";

const severities = ["debug", "info", "notice", "warning", "error", "critical"] as const;

export const ZEventFilter = z.object({
  from: z.date().optional(),
  to: z.date().optional(),
  nodeId: z.string().max(200).optional(),
  kind: z.string().max(100).optional(),
  severity: z.array(z.enum(severities)).max(6).optional(),
  device: z.string().max(200).optional(),
  mirror: z.string().max(200).optional(),
  /** Free text in the message. */
  text: z.string().max(200).optional(),
  acknowledged: z.boolean().optional(),
});
export type TEventFilter = z.infer<typeof ZEventFilter>;

/** Keyset cursor: the (occurredAt, id) of the last row seen, as `<ms>:<id>`. */
const ZCursor = z.string().regex(/^\d+:\d+$/, "malformed cursor");

/** Acknowledged and not lapsed: an expired acknowledgement no longer silences the event. */
function acknowledgedNow(now: Date): Prisma.EventWhereInput {
  return {
    acknowledgedAt: { not: null },
    OR: [{ ackExpiresAt: null }, { ackExpiresAt: { gt: now } }],
  };
}

/**
 * The text filter is a substring, not a pattern: Prisma's `contains` becomes ILIKE
 * '%…%', where `%`, `_` and `\` are wildcards and the escape (Postgres's default escape
 * is the backslash), so they are escaped to mean themselves.
 */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function eventWhere(f: TEventFilter, now: Date = new Date()): Prisma.EventWhereInput {
  return {
    ...(f.from || f.to
      ? { occurredAt: { ...(f.from ? { gte: f.from } : {}), ...(f.to ? { lte: f.to } : {}) } }
      : {}),
    ...(f.nodeId ? { nodeId: f.nodeId } : {}),
    ...(f.kind ? { kind: f.kind } : {}),
    ...(f.severity?.length ? { severity: { in: f.severity } } : {}),
    ...(f.device ? { device: f.device } : {}),
    ...(f.mirror ? { mirror: f.mirror } : {}),
    ...(f.text ? { message: { contains: escapeLike(f.text), mode: "insensitive" as const } } : {}),
    ...(f.acknowledged === undefined
      ? {}
      : f.acknowledged
        ? acknowledgedNow(now)
        : { NOT: acknowledgedNow(now) }),
  };
}

export { eventSelect, serializeEvent, type TEventRow } from "../event-rows";

/**
 * Distinct values of an indexed column by skip scan (one index probe per value), not
 * SELECT DISTINCT over every row: with a million events that is ~1 ms instead of a scan.
 * (Prisma's `distinct` de-duplicates in the client after reading all rows.)
 */
async function distinctValues(
  db: Db,
  column: "kind" | "device" | "mirror",
  limit: number,
): Promise<string[]> {
  const rows = await db.$queryRawUnsafe<Array<{ v: string }>>(`
    WITH RECURSIVE t(v) AS (
      SELECT min(${column}) FROM events
      UNION ALL
      SELECT (SELECT min(${column}) FROM events WHERE ${column} > t.v) FROM t WHERE t.v IS NOT NULL
    )
    SELECT v FROM t WHERE v IS NOT NULL LIMIT ${Math.trunc(limit)}`);
  return rows.map((r) => r.v);
}

export async function listEvents(db: Db, filter: TEventFilter, limit: number, cursor?: string) {
  const where = eventWhere(filter);
  if (cursor) {
    const [ms, id] = cursor.split(":");
    const at = new Date(Number(ms));
    // "(occurredAt, id) < (at, id)" written so Postgres can seek the (occurred_at, id)
    // index and walk it: everything at or before `at`, minus the rows of that same instant
    // already shown. (An OR of the two cases makes it scan instead.)
    const timeFilter = (where.occurredAt ?? {}) as Prisma.DateTimeFilter;
    where.occurredAt = {
      ...timeFilter,
      lte: timeFilter.lte && timeFilter.lte < at ? timeFilter.lte : at,
    };
    where.NOT = { occurredAt: at, id: { gte: BigInt(id!) } };
  }
  const rows = await db.event.findMany({
    where,
    orderBy: [{ occurredAt: "desc" }, { id: "desc" }],
    take: limit + 1,
    select: eventSelect,
  });
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    items: page.map(serializeEvent),
    nextCursor: rows.length > limit && last ? `${last.occurredAt.getTime()}:${last.id}` : null,
  };
}

export const eventsRouter = createTRPCRouter({
  /** Newest first; keyset-paginated so page 1,000 costs what page 1 costs (PB7). */
  list: protectedProcedure
    .input(
      ZEventFilter.extend({
        limit: z.number().int().min(1).max(500).default(100),
        cursor: ZCursor.optional(),
      }),
    )
    .query(({ ctx, input }) => {
      const { limit, cursor, ...filter } = input;
      return listEvents(ctx.db, filter, limit, cursor);
    }),

  /** Values for the filter pickers. */
  facets: protectedProcedure.query(async ({ ctx }) => {
    const [kinds, devices, mirrors, nodes] = await Promise.all([
      distinctValues(ctx.db, "kind", 100),
      distinctValues(ctx.db, "device", 200),
      distinctValues(ctx.db, "mirror", 200),
      ctx.db.node.findMany({ select: { id: true }, orderBy: { id: "asc" } }),
    ]);
    return { kinds, devices, mirrors, nodes: nodes.map((n) => n.id) };
  }),

  /**
   * Related events grouped into incidents (DASHBOARD.md edge 7): the events of one node
   * about one subject (a mirror, else a device, else the kind) with less than `gapMinutes`
   * between them — e.g. media error → leg failed → resync → done.
   */
  incidents: protectedProcedure
    .input(
      z.object({
        days: z.number().int().min(1).max(90).default(7),
        gapMinutes: z.number().int().min(1).max(1440).default(10),
        limit: z.number().int().min(1).max(200).default(50),
      }),
    )
    .query(async ({ ctx, input }) => {
      const since = new Date(ctx.now().getTime() - input.days * 86_400_000);
      const rows = await ctx.db.$queryRaw<
        Array<{
          node_id: string | null;
          subject: string;
          started: Date;
          ended: Date;
          events: bigint;
          unacknowledged: bigint;
          worst: string;
          kinds: string[];
          mirror: string | null;
          device: string | null;
        }>
      >`
        WITH e AS (
          SELECT id, occurred_at, severity, kind, node_id, mirror, device,
                 coalesce(mirror, device, kind) AS subject,
                 (acknowledged_at IS NULL OR ack_expires_at <= ${ctx.now()}) AS open
            FROM events WHERE occurred_at >= ${since}
        ), g AS (
          SELECT *, CASE WHEN lag(occurred_at) OVER w IS NULL
                           OR occurred_at - lag(occurred_at) OVER w > make_interval(mins => ${input.gapMinutes}::int)
                         THEN 1 ELSE 0 END AS starts
            FROM e WINDOW w AS (PARTITION BY node_id, subject ORDER BY occurred_at, id)
        ), n AS (
          SELECT *, sum(starts) OVER (PARTITION BY node_id, subject ORDER BY occurred_at, id) AS grp FROM g
        )
        SELECT node_id, subject, min(occurred_at) AS started, max(occurred_at) AS ended, count(*) AS events,
               count(*) FILTER (WHERE open) AS unacknowledged, max(severity)::text AS worst,
               array_agg(DISTINCT kind ORDER BY kind) AS kinds, max(mirror) AS mirror, max(device) AS device
          FROM n GROUP BY node_id, subject, grp
         ORDER BY max(occurred_at) DESC LIMIT ${input.limit}`;
      return rows.map((r) => ({
        nodeId: r.node_id,
        subject: r.subject,
        started: r.started,
        ended: r.ended,
        events: Number(r.events),
        unacknowledged: Number(r.unacknowledged),
        worst: r.worst,
        kinds: r.kinds,
        mirror: r.mirror,
        device: r.device,
      }));
    }),

  /**
   * One incident, self-contained (DASHBOARD.md edge 13): its events, the operator actions
   * on its subject or node around it, and its chart data (server/incident-export.ts).
   * `/api/events/export?incident=1&…` serves the same as a JSON or Markdown download.
   */
  incidentExport: protectedProcedure
    .input(ZIncidentRef)
    .query(({ ctx, input }) => incidentExport(ctx.db, input, ctx.now())),

  /** Acknowledge (or un-acknowledge) events; kept on the server and audited. */
  acknowledge: operatorProcedure
    .input(
      z.object({
        ids: z.array(z.string().regex(/^\d+$/)).min(1).max(500),
        acknowledged: z.boolean().default(true),
        /** Why it is fine for now, and for how long (then it counts as unacknowledged). */
        note: z.string().max(1000).optional(),
        expiresInHours: z
          .number()
          .min(0.1)
          .max(24 * 365)
          .optional(),
      }),
    )
    .mutation(({ ctx, input }) => acknowledgeEvents(ctx, input)),
});
