import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "./agents";
import { createCaller } from "./root";
import { type ContextUser, createContextInner } from "./trpc";

// Role checks and input validation happen before any agent is asked; the behaviour with
// real agents (the demo cluster's simulator) is covered end to end in e2e/product.spec.ts.
describe("mirrors API: roles and validation (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const as = (user: ContextUser | null) =>
    createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory("unused-token-0123456789", 300),
        now: () => new Date(),
        user,
      }),
    );
  const viewer: ContextUser = { id: "v", username: "vera", role: "viewer" };
  const operator: ContextUser = { id: "o", username: "otto", role: "operator" };
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "mirrors");
    db = createDb(database.url, { poolSize: 2 });
    await db.user.create({
      data: { id: "o", name: "otto", username: "otto", email: "otto@users.mirrorplane.invalid" },
    });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  it("refuses every resync mutation to viewers and to signed-out callers", async () => {
    for (const user of [viewer, null]) {
      const code = user ? "FORBIDDEN" : "UNAUTHORIZED";
      await expect(as(user).mirrors.startResync({ uuid: "m" })).rejects.toMatchObject({ code });
      await expect(as(user).mirrors.bulkResync({ uuids: ["m"] })).rejects.toMatchObject({ code });
      await expect(as(user).mirrors.cancel({ uuid: "m" })).rejects.toMatchObject({ code });
      await expect(
        as(user).mirrors.throttle({ uuid: "m", regionsPerSecond: 5 }),
      ).rejects.toMatchObject({ code });
    }
    await expect(as(null).mirrors.list()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });

  it("validates ranges and throttles", async () => {
    await expect(
      as(operator).mirrors.startResync({ uuid: "m", first: 10, last: 5 }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(as(operator).mirrors.startResync({ uuid: "m", first: -1 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(
      as(operator).mirrors.startResync({ uuid: "m", throttle: 0 }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(
      as(operator).mirrors.throttle({ uuid: "m", regionsPerSecond: 0 }),
    ).rejects.toMatchObject({ code: "BAD_REQUEST" });
    await expect(as(operator).mirrors.bulkResync({ uuids: [] })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await expect(as(operator).mirrors.plan({ uuid: "" })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
  });

  it("says plainly when no reachable node holds the mirror", async () => {
    expect(await as(viewer).mirrors.list()).toEqual({ mirrors: [], unreachable: [] });
    await expect(as(operator).mirrors.startResync({ uuid: "LVM-nowhere" })).rejects.toMatchObject({
      code: "NOT_FOUND",
      message: "no reachable node holds mirror LVM-nowhere",
    });
    const results = await as(operator).mirrors.bulkResync({ uuids: ["LVM-nowhere"] });
    expect(results).toEqual([
      { uuid: "LVM-nowhere", outcome: "refused", detail: "no reachable node holds it" },
    ]);
    const trail = await as(viewer).audit.list({ limit: 1 });
    expect(trail.items[0]).toMatchObject({
      action: "mirrors.startResync",
      outcome: "refused",
      actor: "otto",
    });
  });
});
