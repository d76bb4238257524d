import type { ContextInner, ContextUser } from "../trpc";
import { audited, refusal } from "./audit";

/** Acknowledges (or un-acknowledges) events; kept on the server and audited. */
export async function acknowledgeEvents(
  ctx: ContextInner & { user: ContextUser },
  input: {
    ids: string[];
    acknowledged: boolean;
    note?: string | undefined;
    expiresInHours?: number | undefined;
  },
) {
  return audited(
    ctx,
    { action: "events.acknowledge", target: `events:${input.ids.join(",")}`, params: input },
    async () => {
      const ids = input.ids.map((id) => BigInt(id));
      const { count } = await ctx.db.event.updateMany({
        where: { id: { in: ids } },
        data: input.acknowledged
          ? {
              acknowledgedAt: ctx.now(),
              acknowledgedBy: ctx.user.username,
              ackNote: input.note ?? null,
              ackExpiresAt: input.expiresInHours
                ? new Date(ctx.now().getTime() + input.expiresInHours * 3_600_000)
                : null,
            }
          : { acknowledgedAt: null, acknowledgedBy: null, ackNote: null, ackExpiresAt: null },
      });
      if (count === 0) throw refusal("NOT_FOUND", "no such events");
      return { count };
    },
    ({ count }) => ({
      action: input.acknowledged ? "events.acknowledge" : "events.unacknowledge",
      target: `events:${input.ids.slice(0, 20).join(",")}${input.ids.length > 20 ? ",…" : ""}`,
      params: { count, note: input.note ?? null, expiresInHours: input.expiresInHours ?? null },
    }),
  );
}
