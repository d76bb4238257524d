import type { Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "./agents";
import type { ContextUser } from "./trpc";

// Disabling users and resetting passwords, through the tRPC procedures and better-auth's
// real sign-in, session and change-password endpoints, on real Postgres.
describe("user administration: disable, enable, password reset (real Postgres, better-auth)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let mod: {
    auth: typeof import("./auth");
    root: typeof import("./root");
    trpc: typeof import("./trpc");
    db: typeof import("./db");
  };
  const agents = createAgentDirectory("unused-token-0123456789");
  let admin: ContextUser;
  const as = (user: ContextUser | null) =>
    mod.root.createCaller(mod.trpc.createContextInner({ db, agents, now: () => new Date(), user }));

  /** Signs in through better-auth's own endpoint; the session cookie, or the refusal. */
  async function signIn(username: string, password: string) {
    // (auth()'s declared type does not carry the username plugin's endpoints.)
    const api = mod.auth.auth().api as unknown as {
      signInUsername(a: { body: object; headers: Headers; asResponse: true }): Promise<Response>;
    };
    const res = await api.signInUsername({
      body: { username, password },
      headers: new Headers(),
      asResponse: true,
    });
    if (!res.ok)
      return { status: res.status, message: ((await res.json()) as { message: string }).message };
    const cookie = res.headers
      .getSetCookie()
      .map((c: string) => c.split(";")[0])
      .join("; ");
    return { status: res.status, headers: new Headers({ cookie }) };
  }
  const sessionOf = async (headers: Headers) => mod.auth.sessionUser(headers);

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "useradmin");
    // The web app's env (validated once, read lazily by env()): this suite's database.
    process.env.DATABASE_URL = database.url;
    process.env.BETTER_AUTH_SECRET = "test-secret-test-secret-test-secret-0123";
    process.env.MIRRORPLANE_AGENT_TOKEN = "unused-token-0123456789";
    process.env.MIRRORPLANE_PUBLIC_URL = "http://127.0.0.1:3000";
    mod = {
      auth: await import("./auth"),
      root: await import("./root"),
      trpc: await import("./trpc"),
      db: await import("./db"),
    };
    db = mod.db.db();
    const { createUser } = await import("./users");
    const a = await createUser(db, {
      username: "ada",
      password: "admin-password-1",
      role: "admin",
    });
    admin = { id: a.id, username: a.username, role: "admin" };
    await createUser(db, { username: "bob", password: "bob-password-1", role: "operator" });
  });
  afterAll(async () => {
    await db?.$disconnect();
    await database.drop();
  });

  it("disabling ends the user's sessions at once and refuses sign-in with a sentence", async () => {
    const first = await signIn("bob", "bob-password-1");
    const second = await signIn("bob", "bob-password-1");
    expect(first.status).toBe(200);
    expect(await sessionOf(first.headers!)).toMatchObject({ username: "bob", role: "operator" });

    const result = await as(admin).users.setDisabled({ username: "bob", disabled: true });
    expect(result).toEqual({ username: "bob", disabled: true, sessionsEnded: 2 });
    // Both sessions are gone: the next request of either browser is signed out.
    expect(await sessionOf(first.headers!)).toBeNull();
    expect(await sessionOf(second.headers!)).toBeNull();
    const bob = await db.user.findUniqueOrThrow({
      where: { username: "bob" },
      select: { id: true },
    });
    expect(await db.session.count({ where: { userId: bob.id } })).toBe(0);

    // The right password: refused, and told why. A wrong one learns nothing more.
    expect(await signIn("bob", "bob-password-1")).toEqual({
      status: 403,
      message: mod.auth.accountDisabledMessage,
    });
    const wrong = await signIn("bob", "not-bobs-password");
    expect(wrong.status).toBe(401);
    expect(wrong.message).not.toMatch(/disabled/i);
    expect(await db.session.count({ where: { userId: bob.id } })).toBe(0);

    const listed = await as(admin).users.list();
    expect(listed.find((u) => u.username === "bob")?.disabledAt).toBeInstanceOf(Date);

    await as(admin).users.setDisabled({ username: "bob", disabled: false });
    const again = await signIn("bob", "bob-password-1");
    expect(again.status).toBe(200);
    expect(await sessionOf(again.headers!)).toMatchObject({ username: "bob" });

    const rows = await db.auditAction.findMany({
      where: { target: "user:bob", action: { in: ["users.disable", "users.enable"] } },
      orderBy: { id: "asc" },
      select: { actor: true, action: true, outcome: true, params: true },
    });
    expect(rows).toEqual([
      {
        actor: "ada",
        action: "users.disable",
        outcome: "ok",
        params: { username: "bob", sessionsEnded: 2 },
      },
      { actor: "ada", action: "users.enable", outcome: "ok", params: { username: "bob" } },
    ]);
  });

  it("refuses non-admins, one's own account and the last admin — and audits each refusal", async () => {
    const bobRow = await db.user.findUniqueOrThrow({
      where: { username: "bob" },
      select: { id: true },
    });
    for (const role of ["viewer", "operator"] as const) {
      const user: ContextUser = { id: bobRow.id, username: "bob", role };
      await expect(
        as(user).users.setDisabled({ username: "ada", disabled: true }),
      ).rejects.toMatchObject({ code: "FORBIDDEN" });
      await expect(
        as(user).users.resetPassword({ username: "ada", password: "taken-over-123" }),
      ).rejects.toMatchObject({ code: "FORBIDDEN" });
    }
    await expect(as(admin).users.setDisabled({ username: "ada", disabled: true })).rejects.toThrow(
      "You cannot disable your own account.",
    );
    // A second admin may not disable the last enabled one either.
    await db.user.update({ where: { username: "ada" }, data: { disabledAt: null } });
    const carol = await (await import("./users")).createUser(db, {
      username: "carol",
      password: "carol-password-1",
      role: "admin",
    });
    const carolCtx: ContextUser = { id: carol.id, username: "carol", role: "admin" };
    await as(admin).users.setDisabled({ username: "carol", disabled: true });
    await expect(
      as(carolCtx).users.setDisabled({ username: "ada", disabled: true }),
    ).rejects.toThrow(/last enabled admin/);
    expect((await db.user.findUniqueOrThrow({ where: { username: "ada" } })).disabledAt).toBeNull();

    const refused = await db.auditAction.findMany({
      where: {
        outcome: "refused",
        action: { in: ["users.setDisabled", "users.disable", "users.resetPassword"] },
      },
      orderBy: { id: "asc" },
      select: { actor: true, action: true, params: true, detail: true },
    });
    expect(refused.map((r) => [r.actor, r.action])).toEqual([
      ["bob", "users.setDisabled"],
      ["bob", "users.resetPassword"],
      ["bob", "users.setDisabled"],
      ["bob", "users.resetPassword"],
      ["ada", "users.disable"],
      ["carol", "users.disable"],
    ]);
    expect(refused[0]!.detail).toMatch(/needs the admin role/i);
    // The password a refused caller sent is not in the log.
    expect(JSON.stringify(refused)).not.toContain("taken-over-123");
  });

  it("a reset password ends the sessions; with mustChange the user can only choose a new one", async () => {
    const before = await signIn("bob", "bob-password-1");
    expect(await sessionOf(before.headers!)).not.toBeNull();
    await as(admin).users.resetPassword({ username: "bob", password: "temporary-pass-1" });
    expect(await sessionOf(before.headers!)).toBeNull();
    expect((await signIn("bob", "bob-password-1")).status).toBe(401);

    const temp = await signIn("bob", "temporary-pass-1");
    expect(temp.status).toBe(200);
    const bob = await sessionOf(temp.headers!);
    expect(bob).toMatchObject({ username: "bob", mustChangePassword: true });
    // Everything but the session itself is refused until the password is changed.
    await expect(as(bob).nodes.list()).rejects.toThrow(mod.trpc.mustChangePasswordMessage);
    expect(await as(bob).session.me()).toMatchObject({ mustChangePassword: true });

    // better-auth's own change-password endpoint (checks the current password).
    await mod.auth.auth().api.changePassword({
      body: {
        currentPassword: "temporary-pass-1",
        newPassword: "bobs-own-password-2",
        revokeOtherSessions: true,
      },
      headers: temp.headers!,
    });
    const now = await signIn("bob", "bobs-own-password-2");
    const after = await sessionOf(now.headers!);
    expect(after).toMatchObject({ username: "bob", mustChangePassword: false });
    await expect(as(after).nodes.list()).resolves.toBeDefined();

    // Without mustChange the temporary password simply works.
    await as(admin).users.resetPassword({
      username: "bob",
      password: "temporary-pass-3",
      mustChange: false,
    });
    const plain = await signIn("bob", "temporary-pass-3");
    expect(await sessionOf(plain.headers!)).toMatchObject({ mustChangePassword: false });

    const rows = await db.auditAction.findMany({
      where: { action: { in: ["users.resetPassword", "account.changePassword"] }, outcome: "ok" },
      orderBy: { id: "asc" },
      select: { actor: true, action: true, params: true },
    });
    expect(rows).toEqual([
      {
        actor: "ada",
        action: "users.resetPassword",
        params: { username: "bob", mustChange: true },
      },
      { actor: "bob", action: "account.changePassword", params: {} },
      {
        actor: "ada",
        action: "users.resetPassword",
        params: { username: "bob", mustChange: false },
      },
    ]);
    const everything = await db.auditAction.findMany({ select: { params: true, detail: true } });
    expect(JSON.stringify(everything)).not.toMatch(/temporary-pass|own-password/);
  });
});
