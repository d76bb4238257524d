import type { Prisma } from "@mirrorplane/db";

/** The columns the dashboard shows of an event (list, export, incident export). */
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
  ackNote: true,
  ackExpiresAt: true,
  data: true,
} satisfies Prisma.EventSelect;

type Row = Prisma.EventGetPayload<{ select: typeof eventSelect }>;

/**
 * The message with what the agent keeps only in the event's data (issue 13): the value a
 * throttle was set to, who started or cancelled a resync.
 */
export function eventMessage(kind: string, message: string, data: unknown): string {
  if (kind !== "resync" || typeof data !== "object" || data === null) return message;
  const d = data as { what?: unknown; regionsPerSecond?: unknown; actor?: unknown };
  if (d.what === "throttle" && !/regions\/s|unthrottled/.test(message))
    return typeof d.regionsPerSecond === "number"
      ? `${message} to ${d.regionsPerSecond.toLocaleString("en-US")} regions/s`
      : `${message}: none (unthrottled)`;
  if ((d.what === "start" || d.what === "cancelled") && typeof d.actor === "string" && d.actor)
    return message.includes(` by ${d.actor}`) ? message : `${message} by ${d.actor}`;
  return message;
}

/** Browser-safe row: bigints and decimals as strings; the data only as the message uses it. */
export function serializeEvent({ data, ...r }: Row) {
  return {
    ...r,
    message: eventMessage(r.kind, r.message, data),
    id: r.id.toString(),
    count: r.count.toString(),
    rangeStart: r.rangeStart?.toString() ?? null,
    rangeEnd: r.rangeEnd?.toString() ?? null,
    regionStart: r.regionStart?.toString() ?? null,
    regionEnd: r.regionEnd?.toString() ?? null,
  };
}
export type TEventRow = ReturnType<typeof serializeEvent>;
