import type { Db, Prisma } from "@mirrorplane/db";
import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { audit, createTRPCRouter, operatorProcedure, protectedProcedure } from "../trpc";

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

export function eventWhere(f: TEventFilter): Prisma.EventWhereInput {
  return {
    ...(f.from || f.to
      ? { occurredAt: { ...(f.from ? { gte: f.from } : {}), ...(f.to ? { lte: f.to } : {}) } }
      : {}),
    ...(f.nodeId ? { nodeId: f.nodeId } : {}),
    ...(f.kind ? { kind: f.kind } : {}),
    ...(f.severity?.length ? { severity: { in: f.severity } } : {}),
    ...(f.device ? { device: f.device } : {}),
    ...(f.mirror ? { mirror: f.mirror } : {}),
    ...(f.text ? { message: { contains: f.text, mode: "insensitive" as const } } : {}),
    ...(f.acknowledged === undefined
      ? {}
      : { acknowledgedAt: f.acknowledged ? { not: null } : null }),
  };
}

export const eventSelect = {
  id: true,
  occurredAt: true,
  receivedAt: true,
  nodeId: true,
  kind: true,
  severity: true,
  source: true,
  device: true,
  mirror: true,
  leg: true,
  message: true,
  rangeStart: true,
  rangeEnd: true,
  rangeUnit: true,
  count: true,
  regionStart: true,
  regionEnd: true,
  simulated: true,
  rawLine: true,
  acknowledgedAt: true,
  acknowledgedBy: true,
} satisfies Prisma.EventSelect;

type Row = Prisma.EventGetPayload<{ select: typeof eventSelect }>;

/** Browser-safe row: bigints and decimals as strings. */
export function serializeEvent(r: Row) {
  return {
    ...r,
    id: r.id.toString(),
    count: r.count.toString(),
    rangeStart: r.rangeStart?.toString() ?? null,
    rangeEnd: r.rangeEnd?.toString() ?? null,
    regionStart: r.regionStart?.toString() ?? null,
    regionEnd: r.regionEnd?.toString() ?? null,
  };
}
export type TEventRow = ReturnType<typeof serializeEvent>;

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

  /** Acknowledge (or un-acknowledge) events; kept on the server and audited. */
  acknowledge: operatorProcedure
    .input(
      z.object({
        ids: z.array(z.string().regex(/^\d+$/)).min(1).max(500),
        acknowledged: z.boolean().default(true),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const ids = input.ids.map((id) => BigInt(id));
      const { count } = await ctx.db.event.updateMany({
        where: { id: { in: ids } },
        data: input.acknowledged
          ? { acknowledgedAt: ctx.now(), acknowledgedBy: ctx.user.username }
          : { acknowledgedAt: null, acknowledgedBy: null },
      });
      if (count === 0) {
        await audit(ctx, {
          action: "events.acknowledge",
          target: `events:${input.ids.join(",")}`,
          params: input,
          outcome: "refused",
          detail: "no such events",
        });
        throw new TRPCError({ code: "NOT_FOUND", message: "no such events" });
      }
      await audit(ctx, {
        action: input.acknowledged ? "events.acknowledge" : "events.unacknowledge",
        target: `events:${input.ids.slice(0, 20).join(",")}${input.ids.length > 20 ? ",…" : ""}`,
        params: { count },
        outcome: "ok",
      });
      return { count };
    }),
});
