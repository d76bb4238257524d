import { accountAdmin } from "../auth";
import type { ContextInner, ContextUser, TRoleName } from "../trpc";
import { createFirstAdmin, createUser, UserExistsError } from "../users";
import { audited, refusal } from "./audit";

// What an admin (or, once, the first visitor) changes about accounts, each change through
// the one audited path: refusals are audited with their reason, then thrown.

type TAdminContext = ContextInner & { user: ContextUser };

/** First run only: refused as soon as any user exists. */
export async function setUpFirstAdmin(
  ctx: ContextInner,
  input: Parameters<typeof createFirstAdmin>[1],
) {
  return audited(
    ctx,
    { action: "setup.createFirstAdmin", target: `user:${input.username}` },
    async () => {
      const created = await createFirstAdmin(ctx.db, input);
      if (!created)
        throw refusal("FORBIDDEN", "the first admin already exists; sign in instead", {
          detail: "users exist",
        });
      return created;
    },
    // Audited as the admin just created.
    (created) => ({
      params: { username: input.username },
      as: { db: ctx.db, user: { id: created.id, username: created.username, role: "admin" } },
    }),
  );
}

export async function createAccount(ctx: TAdminContext, input: Parameters<typeof createUser>[1]) {
  return audited(
    ctx,
    {
      action: "users.create",
      target: `user:${input.username}`,
      params: { username: input.username, role: input.role },
    },
    async () => {
      try {
        return await createUser(ctx.db, input);
      } catch (error) {
        if (error instanceof UserExistsError) throw refusal("CONFLICT", error.message);
        throw error;
      }
    },
  );
}

async function lastEnabledAdmin(ctx: ContextInner): Promise<boolean> {
  return (await ctx.db.user.count({ where: { role: "admin", disabledAt: null } })) <= 1;
}

export async function setRole(ctx: TAdminContext, input: { username: string; role: TRoleName }) {
  const user = await ctx.db.user.findUnique({
    where: { username: input.username },
    select: { id: true, role: true },
  });
  if (!user) throw refusal("NOT_FOUND", `no user ${input.username}`);
  return audited(
    ctx,
    { action: "users.setRole", target: `user:${input.username}`, params: input },
    async () => {
      if (user.role === "admin" && input.role !== "admin" && (await lastEnabledAdmin(ctx)))
        throw refusal("PRECONDITION_FAILED", "cannot demote the last admin", {
          detail: "last admin",
        });
      await ctx.db.user.update({
        where: { id: user.id },
        data: { role: input.role },
        select: { id: true },
      });
      return { username: input.username, role: input.role };
    },
    () => ({ params: { ...input, from: user.role } }),
  );
}

/**
 * Disables (or enables again) an account: a disabled user's sessions end at once and
 * sign-in is refused with a sentence (server/auth.ts). Never one's own account, never
 * the last enabled admin.
 */
export async function setDisabled(
  ctx: TAdminContext,
  input: { username: string; disabled: boolean },
) {
  return audited(
    ctx,
    {
      action: input.disabled ? "users.disable" : "users.enable",
      target: `user:${input.username}`,
      params: input,
    },
    async () => {
      const user = await ctx.db.user.findUnique({
        where: { username: input.username },
        select: { id: true, role: true, disabledAt: true },
      });
      if (!user) throw refusal("NOT_FOUND", `There is no user ${input.username}.`);
      if (input.disabled && user.id === ctx.user.id)
        throw refusal("PRECONDITION_FAILED", "You cannot disable your own account.");
      if (
        input.disabled &&
        user.role === "admin" &&
        !user.disabledAt &&
        (await lastEnabledAdmin(ctx))
      )
        throw refusal(
          "PRECONDITION_FAILED",
          "This is the last enabled admin; make another user admin first.",
        );
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
      return { username: input.username, disabled: input.disabled, sessionsEnded };
    },
    (r) => ({
      params: {
        username: input.username,
        ...(input.disabled ? { sessionsEnded: r.sessionsEnded } : {}),
      },
    }),
  );
}

/**
 * Sets a temporary password for another user (hashed by better-auth) and ends their
 * sessions. With `mustChange` the user can do nothing but choose their own password at
 * the next sign-in. The password is never written to the audit log.
 */
export async function resetPassword(
  ctx: TAdminContext,
  input: { username: string; password: string; mustChange: boolean },
) {
  const params = { username: input.username, mustChange: input.mustChange };
  return audited(
    ctx,
    { action: "users.resetPassword", target: `user:${input.username}`, params },
    async () => {
      const user = await ctx.db.user.findUnique({
        where: { username: input.username },
        select: { id: true },
      });
      if (!user) throw refusal("NOT_FOUND", `There is no user ${input.username}.`);
      if (user.id === ctx.user.id)
        throw refusal(
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
      return params;
    },
  );
}
