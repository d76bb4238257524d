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
