import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  accountKey,
  backoffMs,
  recordSignInFailure,
  recordSignInSuccess,
  signInPolicy,
  signInVerdict,
} from "./sign-in-throttle";

describe("per-account sign-in back-off (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const t0 = new Date("2026-06-01T10:00:00Z");
  const at = (ms: number) => new Date(t0.getTime() + ms);

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "throttle");
    db = createDb(database.url, { poolSize: 2 });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  it("names one account whether typed as a username or as its placeholder e-mail", () => {
    expect(accountKey({ username: " Alice " })).toBe("alice");
    expect(accountKey({ email: "alice@users.mirrorplane.invalid" })).toBe("alice");
    expect(accountKey({ email: "ALICE@example.com" })).toBe("alice@example.com");
    expect(accountKey({})).toBeNull();
  });

  it("grows the wait exponentially after the free failures, capped, never endless", () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, 3))).toEqual([
      0, 0, 5_000, 10_000, 20_000, 40_000,
    ]);
    expect(backoffMs(40, 3)).toBe(signInPolicy.maxDelayMs);
  });

  it("delays only the failing client; its wait ends; a success clears its record", async () => {
    const mallory = { account: "bob", client: "10.1.0.1" };
    for (let i = 0; i < 3; i++) {
      expect(await signInVerdict(db, mallory, at(i * 100))).toEqual({ allowed: true });
      await recordSignInFailure(db, mallory, at(i * 100));
    }
    // 3 failures: 5 s from the last one.
    expect(await signInVerdict(db, mallory, at(300))).toEqual({
      allowed: false,
      retryAfterSeconds: 5,
    });
    expect(await signInVerdict(db, mallory, at(200 + 5_000))).toEqual({ allowed: true });
    await recordSignInFailure(db, mallory, at(5_200));
    expect(await signInVerdict(db, mallory, at(5_300))).toMatchObject({
      allowed: false,
      retryAfterSeconds: 10,
    });
    // Someone else on the same account is not slowed down by mallory.
    expect(await signInVerdict(db, { account: "bob", client: "10.1.0.2" }, at(5_300))).toEqual({
      allowed: true,
    });
    // After the window the record starts over.
    expect(await signInVerdict(db, mallory, at(5_200 + signInPolicy.windowMs))).toEqual({
      allowed: true,
    });
    await recordSignInSuccess(db, mallory);
    expect(await db.signInFailure.count({ where: { account: "bob" } })).toBe(0);
  });

  it("under attack from many addresses, each address gets one guess before it waits", async () => {
    for (let a = 0; a < 10; a++)
      await recordSignInFailure(db, { account: "carol", client: `10.2.0.${a}` }, at(a));
    const fresh = { account: "carol", client: "10.2.1.1" };
    expect(await signInVerdict(db, fresh, at(20))).toEqual({ allowed: true });
    await recordSignInFailure(db, fresh, at(20));
    expect(await signInVerdict(db, fresh, at(30))).toEqual({
      allowed: false,
      retryAfterSeconds: 5,
    });
    // The owner's clean address is never delayed.
    expect(await signInVerdict(db, { account: "carol", client: "10.2.9.9" }, at(30))).toEqual({
      allowed: true,
    });
  });

  it("forgets records older than a day", async () => {
    await recordSignInFailure(db, { account: "dave", client: "10.3.0.1" }, at(0));
    await recordSignInFailure(
      db,
      { account: "erin", client: "10.3.0.2" },
      at(signInPolicy.keepMs + 1),
    );
    expect(await db.signInFailure.count({ where: { account: "dave" } })).toBe(0);
    expect(await db.signInFailure.count({ where: { account: "erin" } })).toBe(1);
  });
});
