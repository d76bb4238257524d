import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { peerHeader } from "../client-address";
import { createUser } from "../users";

// Sign-in through the real better-auth route handler (app/api/auth/[...all]/route.ts), as
// server.mjs hands it requests: the TCP peer in x-mirrorplane-peer. Real Postgres.

const origin = "http://127.0.0.1:3000";
let database: { url: string; drop(): Promise<void> };
let db: Db;
let route: typeof import("~/app/api/auth/[...all]/route");

function signIn(
  peer: string,
  body: { username: string; password: string },
  headers: Record<string, string> = {},
) {
  return route.POST(
    new Request(`${origin}/api/auth/sign-in/username`, {
      method: "POST",
      headers: { "content-type": "application/json", origin, [peerHeader]: peer, ...headers },
      body: JSON.stringify(body),
    }),
  );
}

const admin = { username: "root-admin", password: "the right password 1" };
const wrong = (username: string) => ({ username, password: "not the password" });

beforeAll(async () => {
  database = await createTestDatabase(inject("pgAdminUrl"), "signin");
  Object.assign(process.env, {
    DATABASE_URL: database.url,
    MIRRORPLANE_AGENT_TOKEN: "sign-in-test-token-0123456789",
    BETTER_AUTH_SECRET: "sign-in-test-secret-0123456789-0123456789",
    MIRRORPLANE_PUBLIC_URL: origin,
    // One reverse proxy is trusted; every other peer is the client itself.
    MIRRORPLANE_TRUSTED_PROXIES: "10.9.9.9,fd00:9::/64",
  });
  db = createDb(database.url, { poolSize: 2 });
  await createUser(db, { ...admin, role: "admin" });
  route = await import("~/app/api/auth/[...all]/route");
});
afterAll(async () => {
  const { db: appDb } = await import("../db");
  await appDb().$disconnect();
  await db.$disconnect();
  await database.drop();
});

describe("sign-in throttling per real client (issue 15.3)", () => {
  it("ignores X-Forwarded-For from a peer that is not a trusted proxy: rotating it gains nothing", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await signIn("10.0.0.66", wrong(`guess-${i}`), {
        "x-forwarded-for": `198.51.100.${i + 1}`,
        "x-real-ip": `198.51.100.${i + 1}`,
        // A client cannot name its own address either: the route replaces this header.
        "x-mirrorplane-client-ip": `203.0.113.${i + 1}`,
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual([429, 429, 429]);
    // better-auth's own counters, in Postgres (survive a restart, shared by web processes).
    const rows = await db.rateLimit.findMany({ select: { key: true, count: true } });
    expect(rows).toContainEqual({ key: "10.0.0.66|/sign-in/username", count: 5 });
  });

  it("believes X-Forwarded-For from a trusted proxy, right to left: each client behind it has its own allowance", async () => {
    for (const client of ["192.0.2.10", "192.0.2.11"]) {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        // The left-most hop is what the client wrote; only the proxy's own hop is believed.
        const res = await signIn("10.9.9.9", wrong(`someone-${i}`), {
          "x-forwarded-for": `6.6.6.${i}, ${client}`,
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    }
    // X-Real-IP from the proxy when it sends no X-Forwarded-For.
    const res = await signIn("10.9.9.9", wrong("someone-else"), { "x-real-ip": "192.0.2.12" });
    expect(res.status).toBe(401);
  });
});

describe("per-account back-off that nobody can turn into a lock-out (issue 15.3)", () => {
  it("5 failures for a made-up user do not lock the real admin out", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await signIn("10.0.3.3", wrong("made-up-user"))).status);
    // Three free failures, then that client waits (5 s, 10 s, …) on that name.
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const res = await signIn("10.0.4.4", admin);
    expect(res.status).toBe(200);
  });

  it("an account under attack from many addresses still lets its owner in from a clean address", async () => {
    // Three attacker addresses, four wrong passwords each: 12 failures on the account.
    const attackers = ["10.0.5.1", "10.0.5.2", "10.0.5.3"];
    const seen: number[] = [];
    for (const a of attackers)
      for (let i = 0; i < 4; i++) seen.push((await signIn(a, wrong(admin.username))).status);
    // The first three of each address are free; the fourth already waits (back-off).
    expect(seen.filter((s) => s === 401).length).toBeGreaterThanOrEqual(9);
    expect(seen.slice(-1)).toEqual([429]);

    // Now even the right password from an attacker address waits (its own failures)…
    const refused = await signIn("10.0.5.1", admin);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await refused.json()) as { message: string }).message).toMatch(/try again in \d+ s/);
    // …a fresh address gets one guess and then waits too (the account is under attack)…
    expect((await signIn("10.0.5.9", wrong(admin.username))).status).toBe(401);
    expect((await signIn("10.0.5.9", wrong(admin.username))).status).toBe(429);
    // …and the owner, from a clean address, signs in.
    const ok = await signIn("10.0.6.6", admin);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("set-cookie")).toMatch(/mirrorplane\.session_token=/);
  });
});

describe("the session token only in its cookie (issue 15.6)", () => {
  it("keeps the token out of the sign-in and get-session bodies", async () => {
    const res = await signIn("10.0.7.7", admin);
    expect(res.status).toBe(200);
    const text = await res.text();
    const cookie = res.headers.get("set-cookie")!;
    const token = decodeURIComponent(/mirrorplane\.session_token=([^;]+)/.exec(cookie)![1]!);
    const raw = token.split(".")[0]!;
    expect(raw.length).toBeGreaterThan(16);
    expect(text).not.toContain(raw);
    expect(JSON.parse(text)).not.toHaveProperty("token");
    expect(JSON.parse(text).user.username).toBe(admin.username);

    const session = await route.GET(
      new Request(`${origin}/api/auth/get-session`, {
        headers: {
          cookie: `mirrorplane.session_token=${encodeURIComponent(token)}`,
          origin,
          [peerHeader]: "10.0.7.7",
        },
      }),
    );
    expect(session.status).toBe(200);
    const body = await session.text();
    expect(JSON.parse(body).session.userId).toBeTruthy();
    expect(body).not.toContain(raw);
  });
});
