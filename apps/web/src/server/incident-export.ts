import type { Db, Prisma } from "@mirrorplane/db";
import { z } from "zod";
import { eventSelect, serializeEvent, type TEventRow } from "./event-rows";
import { mdCode, mdText } from "./markdown";
import { bucketMsFor, type TTimelinePoint, timelinePoints } from "./timeline";

/**
 * A self-contained export of one incident (DASHBOARD.md edge 13): its timeline (the
 * events), the operator actions around it, and the chart data of its window, so a
 * write-up needs nothing else.
 *
 * The incident is what `events.incidents` groups: the events of one node (or of none)
 * about one subject — a mirror, else a device, else the kind — between `from` and `to`.
 * Operator actions are the audit rows (who, what, parameters, outcome) on the same subject
 * or node from `paddingMinutes` before the first event to `paddingMinutes` after the last
 * (an operator acts before the events of a resync they start, and after the failure they
 * react to), plus every acknowledgement of one of the incident's events, whenever it was
 * made. The charts are the resync rate of the incident's mirror (or, for another subject,
 * of the node's runs) and the node's khugepaged activity and error counts over the padded
 * window, down-sampled to at most `chartPoints` buckets.
 */
export const ZIncidentRef = z
  .object({
    from: z.date(),
    to: z.date(),
    /** null: the incident of the events that name no node. */
    nodeId: z.string().min(1).max(200).nullable(),
    mirror: z.string().min(1).max(200).optional(),
    device: z.string().min(1).max(200).optional(),
    kind: z.string().min(1).max(100).optional(),
    paddingMinutes: z.number().int().min(0).max(1440).default(10),
    chartPoints: z.number().int().min(10).max(2_000).default(200),
  })
  .refine((r) => r.from <= r.to, "from must not be after to")
  .refine(
    (r) => [r.mirror, r.device, r.kind].filter((x) => x !== undefined).length === 1,
    "name the incident's subject: one of mirror, device or kind",
  );
export type TIncidentRef = z.input<typeof ZIncidentRef>;

export const maxIncidentEvents = 10_000;

export interface TOperatorAction {
  id: string;
  at: Date;
  actor: string;
  action: string;
  target: string;
  params: unknown;
  outcome: string;
  detail: string | null;
}

export interface TIncidentExport {
  incident: {
    nodeId: string | null;
    subject: string;
    subjectKind: "mirror" | "device" | "kind";
    from: Date;
    to: Date;
    events: number;
    unacknowledged: number;
    worst: string | null;
  };
  events: TEventRow[];
  truncated: boolean;
  operatorActions: TOperatorAction[];
  charts: {
    from: Date;
    to: Date;
    bucketMs: number;
    resyncRateScope: string;
    points: TTimelinePoint[];
  };
}

const severityOrder = ["debug", "info", "notice", "warning", "error", "critical"];

export async function incidentExport(
  db: Db,
  input: TIncidentRef,
  now: Date,
): Promise<TIncidentExport> {
  const ref = ZIncidentRef.parse(input);
  const subjectKind = ref.mirror ? "mirror" : ref.device ? "device" : "kind";
  const subject = (ref.mirror ?? ref.device ?? ref.kind)!;
  // Exactly the incident's subject: coalesce(mirror, device, kind) = subject.
  const subjectWhere: Prisma.EventWhereInput =
    subjectKind === "mirror"
      ? { mirror: subject }
      : subjectKind === "device"
        ? { mirror: null, device: subject }
        : { mirror: null, device: null, kind: subject };
  const rows = await db.event.findMany({
    where: {
      ...subjectWhere,
      nodeId: ref.nodeId,
      occurredAt: { gte: ref.from, lte: ref.to },
    },
    orderBy: [{ occurredAt: "asc" }, { id: "asc" }],
    take: maxIncidentEvents + 1,
    select: eventSelect,
  });
  const truncated = rows.length > maxIncidentEvents;
  const events = rows.slice(0, maxIncidentEvents).map(serializeEvent);
  const open = (e: TEventRow) =>
    e.acknowledgedAt === null || (e.ackExpiresAt !== null && e.ackExpiresAt <= now);

  const padMs = ref.paddingMinutes * 60_000;
  const windowFrom = new Date(ref.from.getTime() - padMs);
  // Nothing to chart after now.
  const windowTo = new Date(
    Math.max(ref.to.getTime(), Math.min(ref.to.getTime() + padMs, now.getTime())),
  );
  const targets: string[] = [];
  if (subjectKind === "mirror") targets.push(`mirror:${subject}`);
  if (subjectKind === "device") targets.push(`device:${subject}`);
  const ids = events.map((e) => e.id);
  const actions = await db.$queryRaw<Array<Omit<TOperatorAction, "id"> & { id: bigint }>>`
    SELECT id, at, actor, action, target, params, outcome, detail
      FROM audit_actions
     WHERE (at >= ${windowFrom} AND at <= ${windowTo}
            AND (target = ANY(${targets}::text[])
                 OR (${ref.nodeId}::text IS NOT NULL AND starts_with(target, ${`node:${ref.nodeId ?? ""}:`}))))
        OR (target LIKE 'events:%' AND at >= ${windowFrom}
            AND string_to_array(substr(target, 8), ',') && ${ids}::text[])
     ORDER BY at, id
     LIMIT 1000`;

  const chartBucketMs = bucketMsFor(windowFrom, windowTo, ref.chartPoints);
  const resyncScope =
    subjectKind === "mirror" ? { mirror: subject } : ref.nodeId ? { nodeId: ref.nodeId } : {};
  const points = await timelinePoints(db, {
    nodeId: ref.nodeId,
    from: windowFrom,
    to: windowTo,
    bucketMs: chartBucketMs,
    resync: resyncScope,
    eventMirror: subjectKind === "mirror" ? subject : null,
  });

  let worst: string | null = null;
  for (const e of events)
    if (worst === null || severityOrder.indexOf(e.severity) > severityOrder.indexOf(worst))
      worst = e.severity;
  return {
    incident: {
      nodeId: ref.nodeId,
      subject,
      subjectKind,
      from: ref.from,
      to: ref.to,
      events: events.length,
      unacknowledged: events.filter(open).length,
      worst,
    },
    events,
    truncated,
    operatorActions: actions.map((a) => ({ ...a, id: a.id.toString() })),
    charts: {
      from: windowFrom,
      to: windowTo,
      bucketMs: chartBucketMs,
      resyncRateScope:
        subjectKind === "mirror"
          ? `mirror ${subject}`
          : ref.nodeId
            ? `runs recorded by node ${ref.nodeId}`
            : "whole cluster",
      points,
    },
  };
}

const cell = mdText;

/** The same export as Markdown, for an incident write-up. */
export function incidentMarkdown(x: TIncidentExport, exportedBy: string, exportedAt: Date): string {
  const i = x.incident;
  const lines: string[] = [
    `# Incident: ${i.subjectKind} ${cell(i.subject)}${i.nodeId ? ` on ${cell(i.nodeId)}` : ""}`,
    "",
    `Exported ${exportedAt.toISOString()} by ${exportedBy}. From ${i.from.toISOString()} to ${i.to.toISOString()}; ${i.events} events, ${i.unacknowledged} unacknowledged, worst ${i.worst ?? "—"}.`,
    "",
    "## Timeline",
    "",
    "| time (UTC) | severity | kind | node | device | mirror | message | acknowledged |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...x.events.map(
      (e) =>
        `| ${e.occurredAt.toISOString()} | ${e.severity} | ${cell(e.kind)} | ${cell(e.nodeId)} | ${cell(e.device)} | ${cell(e.mirror)} | ${cell(e.message)} | ${e.acknowledgedBy ? `${cell(e.acknowledgedBy)}${e.ackNote ? `: ${cell(e.ackNote)}` : ""}` : ""} |`,
    ),
    ...(x.truncated ? ["", `(truncated at ${maxIncidentEvents} events)`] : []),
    "",
    "## Operator actions",
    "",
  ];
  if (x.operatorActions.length === 0) lines.push("None on this subject or node in the window.");
  else
    lines.push(
      "| time (UTC) | who | action | target | parameters | outcome | detail |",
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...x.operatorActions.map(
        (a) =>
          `| ${a.at.toISOString()} | ${cell(a.actor)} | ${cell(a.action)} | ${cell(a.target)} | ${mdCode(JSON.stringify(a.params))} | ${a.outcome} | ${cell(a.detail)} |`,
      ),
    );
  const busy = x.charts.points.filter(
    (p) => p.resyncRate > 0 || p.memory > 0 || p.device > 0 || p.resync > 0 || p.collapsed,
  );
  lines.push(
    "",
    "## Charts",
    "",
    `${x.charts.from.toISOString()} – ${x.charts.to.toISOString()} in ${x.charts.bucketMs / 1000} s buckets; resync rate of the ${x.charts.resyncRateScope}. Buckets with nothing in them are left out (${busy.length} of ${x.charts.points.length} shown; the JSON export has every bucket).`,
    "",
    "| bucket start (UTC) | resync rate (regions/s) | resync events | memory errors | device errors | pages collapsed |",
    "| --- | --- | --- | --- | --- | --- |",
    ...busy.map(
      (p) =>
        `| ${new Date(p.t).toISOString()} | ${Math.round(p.resyncRate * 100) / 100} | ${p.resync} | ${p.memory} | ${p.device} | ${p.collapsed ?? ""} |`,
    ),
    "",
  );
  return lines.join("\n");
}
