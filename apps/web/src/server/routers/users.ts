import { z } from "zod";
import {
  createAccount,
  resetPassword,
  setDisabled,
  setRole,
  setUpFirstAdmin,
} from "../domain/user-admin";
import { adminProcedure, createTRPCRouter, protectedProcedure, publicProcedure } from "../trpc";
import { needsFirstRun, ZNewUser, ZPassword, ZRole } from "../users";

const ZFirstAdmin = ZNewUser.omit({ role: true });

export const sessionRouter = createTRPCRouter({
  me: publicProcedure.query(({ ctx }) => ctx.user),
});

export const setupRouter = createTRPCRouter({
  status: publicProcedure.query(async ({ ctx }) => ({
    needsFirstAdmin: await needsFirstRun(ctx.db),
  })),
  /** First run only: refused as soon as any user exists. */
  createFirstAdmin: publicProcedure
    .input(ZFirstAdmin)
    .mutation(({ ctx, input }) => setUpFirstAdmin(ctx, input)),
});

export const usersRouter = createTRPCRouter({
  list: adminProcedure.query(({ ctx }) =>
    ctx.db.user.findMany({
      orderBy: { username: "asc" },
      select: {
        id: true,
        username: true,
        name: true,
        role: true,
        createdAt: true,
        disabledAt: true,
        passwordChangeRequired: true,
      },
    }),
  ),
  create: adminProcedure.input(ZNewUser).mutation(({ ctx, input }) => createAccount(ctx, input)),
  setRole: adminProcedure
    .input(z.object({ username: z.string().min(1), role: ZRole }))
    .mutation(({ ctx, input }) => setRole(ctx, input)),
  /** Disables (or enables again) an account; never one's own, never the last enabled admin. */
  setDisabled: adminProcedure
    .input(z.object({ username: z.string().min(1), disabled: z.boolean() }))
    .mutation(({ ctx, input }) => setDisabled(ctx, input)),
  /**
   * Sets a temporary password for another user and ends their sessions; with `mustChange`
   * (the default) they must choose their own at the next sign-in. Never audited in clear.
   */
  resetPassword: adminProcedure
    .input(
      z.object({
        username: z.string().min(1),
        password: ZPassword,
        mustChange: z.boolean().default(true),
      }),
    )
    .mutation(({ ctx, input }) => resetPassword(ctx, input)),
});

export const auditRouter = createTRPCRouter({
  /** Newest first, keyset-paginated by (at, id). */
  list: protectedProcedure
    .input(
      z.object({
        limit: z.number().int().min(1).max(200).default(50),
        cursor: z.string().regex(/^\d+$/).optional(),
      }),
    )
    .query(async ({ ctx, input }) => {
      const rows = await ctx.db.auditAction.findMany({
        where: input.cursor ? { id: { lt: BigInt(input.cursor) } } : {},
        orderBy: { id: "desc" },
        take: input.limit + 1,
        select: {
          id: true,
          at: true,
          actor: true,
          action: true,
          target: true,
          params: true,
          outcome: true,
          detail: true,
        },
      });
      const page = rows.slice(0, input.limit);
      return {
        items: page.map((r) => ({ ...r, id: r.id.toString() })),
        nextCursor: rows.length > input.limit ? page.at(-1)!.id.toString() : null,
      };
    }),
});
