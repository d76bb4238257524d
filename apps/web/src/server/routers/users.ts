import { TRPCError } from "@trpc/server";
import { z } from "zod";
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
