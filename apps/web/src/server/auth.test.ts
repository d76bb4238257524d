import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { verifyPassword } from "better-auth/crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "./agents";
import { createCaller } from "./root";
import { type ContextUser, createContextInner } from "./trpc";

describe("users, roles and audit (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const agents = createAgentDirectory("unused-token-0123456789");
  const as = (user: ContextUser | null) =>
    createCaller(createContextInner({ db, agents, now: () => new Date(), user }));

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "auth");
    db = createDb(database.url, { poolSize: 4 });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  it("creates exactly one first admin, even when two first-run requests race", async () => {
    expect(await as(null).setup.status()).toEqual({ needsFirstAdmin: true });
    const results = await Promise.allSettled([
      as(null).setup.createFirstAdmin({ username: "alice", password: "correct horse battery" }),
      as(null).setup.createFirstAdmin({ username: "mallory", password: "correct horse battery" }),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(results.filter((r) => r.status === "rejected")).toHaveLength(1);
    expect(await db.user.count()).toBe(1);
    expect(await as(null).setup.status()).toEqual({ needsFirstAdmin: false });
    await expect(
      as(null).setup.createFirstAdmin({ username: "eve", password: "correct horse battery" }),
    ).rejects.toThrow(/already exists/);
  });

  it("stores a password better-auth can verify (its own hashing), never the password", async () => {
    const account = await db.account.findFirstOrThrow({
      where: { providerId: "credential" },
      select: { password: true },
    });
    expect(account.password).not.toContain("correct horse");
    const winner = (await db.user.findFirstOrThrow({ select: { username: true } })).username;
    expect(winner === "alice" || winner === "mallory").toBe(true);
    expect(
      await verifyPassword({ hash: account.password!, password: "correct horse battery" }),
    ).toBe(true);
  });

  it("refuses signed-out callers everything but session state and setup", async () => {
    await expect(as(null).nodes.list()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(as(null).audit.list({})).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(as(null).users.list()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    expect(await as(null).session.me()).toBeNull();
  });

  it("lets only admins manage users, and audits every attempt, role refusals included", async () => {
    const admin = await db.user.findFirstOrThrow({ select: { id: true, username: true } });
    const adminCtx: ContextUser = { id: admin.id, username: admin.username!, role: "admin" };
    const viewer: ContextUser = { id: "v1", username: "vera", role: "viewer" };
    const operator: ContextUser = { id: "o1", username: "otto", role: "operator" };
    for (const user of [viewer, operator]) {
      await expect(
        as(user).users.create({ username: "x1", password: "0123456789", role: "viewer" }),
      ).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
      await expect(
        as(user).users.setRole({ username: admin.username!, role: "viewer" }),
      ).rejects.toMatchObject({
        code: "FORBIDDEN",
      });
      await expect(as(user).users.list()).rejects.toMatchObject({ code: "FORBIDDEN" });
    }
    const created = await as(adminCtx).users.create({
      username: "vera",
      password: "viewer-password-1",
      role: "viewer",
    });
    expect(created.role).toBe("viewer");
    await expect(
      as(adminCtx).users.create({
        username: "vera",
        password: "viewer-password-1",
        role: "viewer",
      }),
    ).rejects.toMatchObject({
      code: "CONFLICT",
    });
    expect(await as(adminCtx).users.setRole({ username: "vera", role: "operator" })).toEqual({
      username: "vera",
      role: "operator",
    });
    await expect(
      as(adminCtx).users.setRole({ username: admin.username!, role: "viewer" }),
    ).rejects.toMatchObject({
      code: "PRECONDITION_FAILED",
    });
    const audit = await as(viewer).audit.list({ limit: 14 });
    const trail = audit.items.map((a) => [a.action, a.outcome]);
    expect(trail.slice(0, 9)).toEqual([
      ["users.setRole", "refused"],
      ["users.setRole", "ok"],
      ["users.create", "refused"],
      ["users.create", "ok"],
      // The role check refused the viewer's and the operator's attempts: audited too.
      ["users.setRole", "refused"],
      ["users.create", "refused"],
      ["users.setRole", "refused"],
      ["users.create", "refused"],
      ["setup.createFirstAdmin", "refused"], // eve, after setup was done
    ]);
    const roleRefusal = audit.items[4]!;
    expect(roleRefusal.actor).toBe("otto");
    expect(roleRefusal.detail).toBe("Needs the admin role; you are operator.");
    // The password is never written to the audit log.
    expect(audit.items[5]!.params).toEqual({
      username: "x1",
      password: "(not recorded)",
      role: "viewer",
    });
    // The two racing first-run requests: one created the admin, one was refused.
    expect(trail.slice(9, 11).sort()).toEqual([
      ["setup.createFirstAdmin", "ok"],
      ["setup.createFirstAdmin", "refused"],
    ]);
    expect(audit.items[1]!.params).toEqual({ username: "vera", role: "operator", from: "viewer" });
    expect(audit.items[1]!.actor).toBe(admin.username);
  });

  it("validates input with field-level errors", async () => {
    const admin = await db.user.findFirstOrThrow({
      where: { role: "admin" },
      select: { id: true, username: true },
    });
    const caller = as({ id: admin.id, username: admin.username!, role: "admin" });
    await expect(
      caller.users.create({ username: "Bad Name", password: "0123456789", role: "viewer" }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(
      caller.users.create({ username: "shorty", password: "short", role: "viewer" }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(
      caller.users.create({ username: "rooty", password: "0123456789", role: "root" as never }),
    ).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(caller.audit.list({ cursor: "abc" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });

  it("paginates the audit log by keyset", async () => {
    const viewer = as({ id: "v1", username: "vera", role: "viewer" });
    const first = await viewer.audit.list({ limit: 2 });
    expect(first.items).toHaveLength(2);
    const second = await viewer.audit.list({ limit: 2, cursor: first.nextCursor! });
    expect(second.items[0]!.id).not.toBe(first.items[1]!.id);
    expect(BigInt(second.items[0]!.id)).toBeLessThan(BigInt(first.items[1]!.id));
  });
});
