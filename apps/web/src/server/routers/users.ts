import { TRPCError } from "@trpc/server";
import { z } from "zod";
import { accountAdmin } from "../auth";
import {
  adminProcedure,
  audit,
  createTRPCRouter,
  protectedProcedure,
  publicProcedure,
} from "../trpc";
import {
  createFirstAdmin,
  createUser,
  needsFirstRun,
  UserExistsError,
  ZNewUser,
  ZPassword,
  ZRole,
} from "../users";

const ZFirstAdmin = ZNewUser.omit({ role: true });

export const sessionRouter = createTRPCRouter({
  me: publicProcedure.query(({ ctx }) => ctx.user),
});

export const setupRouter = createTRPCRouter({
  status: publicProcedure.query(async ({ ctx }) => ({
    needsFirstAdmin: await needsFirstRun(ctx.db),
  })),
  /** First run only: refused as soon as any user exists. */
  createFirstAdmin: publicProcedure.input(ZFirstAdmin).mutation(async ({ ctx, input }) => {
    const created = await createFirstAdmin(ctx.db, input);
    const target = `user:${input.username}`;
    if (!created) {
      await audit(ctx, {
        action: "setup.createFirstAdmin",
        target,
        outcome: "refused",
        detail: "users exist",
      });
      throw new TRPCError({
        code: "FORBIDDEN",
        message: "the first admin already exists; sign in instead",
      });
    }
    await audit(
      { db: ctx.db, user: { id: created.id, username: created.username, role: "admin" } },
      {
        action: "setup.createFirstAdmin",
        target,
        params: { username: input.username },
        outcome: "ok",
      },
    );
    return created;
  }),
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
  create: adminProcedure.input(ZNewUser).mutation(async ({ ctx, input }) => {
    const params = { username: input.username, role: input.role };
    try {
      const user = await createUser(ctx.db, input);
      await audit(ctx, {
        action: "users.create",
        target: `user:${input.username}`,
        params,
        outcome: "ok",
      });
      return user;
    } catch (error) {
      if (error instanceof UserExistsError) {
        await audit(ctx, {
          action: "users.create",
          target: `user:${input.username}`,
          params,
          outcome: "refused",
          detail: error.message,
        });
        throw new TRPCError({ code: "CONFLICT", message: error.message });
      }
      throw error;
    }
  }),
  setRole: adminProcedure
    .input(z.object({ username: z.string().min(1), role: ZRole }))
    .mutation(async ({ ctx, input }) => {
      const target = `user:${input.username}`;
      const user = await ctx.db.user.findUnique({
        where: { username: input.username },
        select: { id: true, role: true },
      });
      if (!user) throw new TRPCError({ code: "NOT_FOUND", message: `no user ${input.username}` });
      if (user.role === "admin" && input.role !== "admin") {
        const admins = await ctx.db.user.count({ where: { role: "admin", disabledAt: null } });
        if (admins <= 1) {
          await audit(ctx, {
            action: "users.setRole",
            target,
            params: input,
            outcome: "refused",
            detail: "last admin",
          });
          throw new TRPCError({
            code: "PRECONDITION_FAILED",
            message: "cannot demote the last admin",
          });
        }
      }
      await ctx.db.user.update({
        where: { id: user.id },
        data: { role: input.role },
        select: { id: true },
      });
      await audit(ctx, {
        action: "users.setRole",
        target,
        params: { ...input, from: user.role },
        outcome: "ok",
      });
      return { username: input.username, role: input.role };
    }),
  /**
   * Disables (or enables again) an account: a disabled user's sessions end at once and
   * sign-in is refused with a sentence (server/auth.ts). Never one's own account, never
   * the last enabled admin.
   */
  setDisabled: adminProcedure
    .input(z.object({ username: z.string().min(1), disabled: z.boolean() }))
    .mutation(async ({ ctx, input }) => {
      const action = input.disabled ? "users.disable" : "users.enable";
      const target = `user:${input.username}`;
      const user = await ctx.db.user.findUnique({
        where: { username: input.username },
        select: { id: true, role: true, disabledAt: true },
      });
      const refuse = async (code: "NOT_FOUND" | "PRECONDITION_FAILED", message: string) => {
        await audit(ctx, { action, target, params: input, outcome: "refused", detail: message });
        throw new TRPCError({ code, message });
      };
      if (!user) return refuse("NOT_FOUND", `There is no user ${input.username}.`);
      if (input.disabled && user.id === ctx.user.id)
        return refuse("PRECONDITION_FAILED", "You cannot disable your own account.");
      if (input.disabled && user.role === "admin" && !user.disabledAt) {
        const admins = await ctx.db.user.count({ where: { role: "admin", disabledAt: null } });
        if (admins <= 1)
          return refuse(
            "PRECONDITION_FAILED",
            "This is the last enabled admin; make another user admin first.",
          );
      }
      const sessionsEnded = input.disabled
        ? await ctx.db.session.count({ where: { userId: user.id } })
        : 0;
      // Disabled first, sessions ended second: a sign-in racing this cannot keep a session
      // (session creation and every request check disabledAt).
      await ctx.db.user.update({
        where: { id: user.id },
        data: { disabledAt: input.disabled ? (user.disabledAt ?? ctx.now()) : null },
        select: { id: true },
      });
      if (input.disabled) await accountAdmin.endSessions(user.id);
      await audit(ctx, {
        action,
        target,
        params: { username: input.username, ...(input.disabled ? { sessionsEnded } : {}) },
        outcome: "ok",
      });
      return { username: input.username, disabled: input.disabled, sessionsEnded };
    }),
  /**
   * Sets a temporary password for another user (hashed by better-auth) and ends their
   * sessions. With `mustChange` (the default) the user can do nothing but choose their own
   * password at the next sign-in. The password is never written to the audit log.
   */
  resetPassword: adminProcedure
    .input(
      z.object({
        username: z.string().min(1),
        password: ZPassword,
        mustChange: z.boolean().default(true),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const target = `user:${input.username}`;
      const params = { username: input.username, mustChange: input.mustChange };
      const user = await ctx.db.user.findUnique({
        where: { username: input.username },
        select: { id: true },
      });
      const refuse = async (code: "NOT_FOUND" | "PRECONDITION_FAILED", message: string) => {
        await audit(ctx, {
          action: "users.resetPassword",
          target,
          params,
          outcome: "refused",
          detail: message,
        });
        throw new TRPCError({ code, message });
      };
      if (!user) return refuse("NOT_FOUND", `There is no user ${input.username}.`);
      if (user.id === ctx.user.id)
        return refuse(
          "PRECONDITION_FAILED",
          "Change your own password from your account menu, not by a reset.",
        );
      await accountAdmin.setPassword(user.id, input.password);
      await ctx.db.user.update({
        where: { id: user.id },
        data: { passwordChangeRequired: input.mustChange },
        select: { id: true },
      });
      await accountAdmin.endSessions(user.id);
      await audit(ctx, { action: "users.resetPassword", target, params, outcome: "ok" });
      return params;
    }),
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
