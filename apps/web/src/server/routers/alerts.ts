import { AppError } from "@mirrorplane/contracts";
import { z } from "zod";
import { alertDelivery, currentSilences } from "../alerting";
import { audit, createTRPCRouter, operatorProcedure, protectedProcedure } from "../trpc";

const ZSilence = z
  .object({
    /** Matchers: at least one; null/absent matches anything. */
    alertname: z.string().min(1).max(100).optional(),
    mirror: z.string().min(1).max(200).optional(),
    nodeId: z.string().min(1).max(200).optional(),
    hours: z
      .number()
      .min(0.25)
      .max(24 * 30),
    reason: z.string().trim().min(3, "say why (at least 3 characters)").max(500),
  })
  .refine((s) => s.alertname || s.mirror || s.nodeId, "a silence needs at least one matcher");

export const alertsRouter = createTRPCRouter({
  /** Where alerts go, how the last round went, and the silences in force. */
  status: protectedProcedure.query(async ({ ctx }) => {
    const d = alertDelivery();
    return {
      configured: d?.configured ?? { webhook: false, alertmanager: false },
      last: d?.last ?? null,
      silences: await currentSilences(ctx.db, ctx.now()),
    };
  }),

  /** Silence matching alerts for `hours` (kept on the server, audited). */
  silence: operatorProcedure.input(ZSilence).mutation(async ({ ctx, input }) => {
    const now = ctx.now();
    const row = await ctx.db.alertSilence.create({
      data: {
        alertname: input.alertname ?? null,
        mirror: input.mirror ?? null,
        nodeId: input.nodeId ?? null,
        createdBy: ctx.user.username,
        reason: input.reason,
        startsAt: now,
        endsAt: new Date(now.getTime() + input.hours * 3_600_000),
      },
      select: { id: true, endsAt: true },
    });
    await audit(ctx, {
      action: "alerts.silence",
      target: input.mirror ? `mirror:${input.mirror}` : (input.alertname ?? `node:${input.nodeId}`),
      params: input,
      outcome: "ok",
      detail: `silence ${row.id} until ${row.endsAt.toISOString()}`,
    });
    return { id: row.id.toString(), endsAt: row.endsAt };
  }),

  /** End a silence now. */
  expire: operatorProcedure
    .input(z.object({ id: z.string().regex(/^\d+$/) }))
    .mutation(async ({ ctx, input }) => {
      const now = ctx.now();
      const updated = await ctx.db.alertSilence.updateMany({
        where: { id: BigInt(input.id), expiredAt: null, endsAt: { gt: now } },
        data: { expiredAt: now, expiredBy: ctx.user.username },
      });
      if (updated.count === 0)
        throw new AppError(
          "NOT_FOUND",
          `Silence ${input.id} is not in force (it ended or was expired already).`,
        );
      await audit(ctx, {
        action: "alerts.expire",
        target: `silence:${input.id}`,
        params: input,
        outcome: "ok",
      });
      return { id: input.id, expiredAt: now };
    }),
});
