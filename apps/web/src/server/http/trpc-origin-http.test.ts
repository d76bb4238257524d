import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { peerHeader } from "../client-address";
import { createUser } from "../users";

// The control-plane API through its real route handler (app/api/trpc/[trpc]/route.ts) with
// a real admin session: issue 15.6, "a curl POST with a foreign Origin and the admin
// cookie created users".

const origin = "http://127.0.0.1:3000";
let database: { url: string; drop(): Promise<void> };
let db: Db;
let trpc: typeof import("~/app/api/trpc/[trpc]/route");
let cookie = "";

function createUserCall(username: string, headers: Record<string, string>) {
  return trpc.POST(
    new Request(`${origin}/api/trpc/users.create`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie, [peerHeader]: "10.4.0.1", ...headers },
      body: JSON.stringify(
        superjson.serialize({ username, password: "a long password 1", role: "admin" }),
      ),
    }),
  );
}

beforeAll(async () => {
  database = await createTestDatabase(inject("pgAdminUrl"), "trpcorigin");
  Object.assign(process.env, {
    DATABASE_URL: database.url,
    MIRRORPLANE_AGENT_TOKEN: "origin-test-token-0123456789",
    BETTER_AUTH_SECRET: "origin-test-secret-0123456789-0123456789",
    MIRRORPLANE_PUBLIC_URL: origin,
    MIRRORPLANE_TRUSTED_ORIGINS: "https://dash.example.net",
  });
  db = createDb(database.url, { poolSize: 2 });
  await createUser(db, { username: "boss", password: "boss password 123", role: "admin" });
  const auth = await import("~/app/api/auth/[...all]/route");
  trpc = await import("~/app/api/trpc/[trpc]/route");
  const res = await auth.POST(
    new Request(`${origin}/api/auth/sign-in/username`, {
      method: "POST",
      headers: { "content-type": "application/json", origin, [peerHeader]: "10.4.0.1" },
      body: JSON.stringify({ username: "boss", password: "boss password 123" }),
    }),
  );
  expect(res.status).toBe(200);
  cookie = res.headers.get("set-cookie")!.split(";")[0]!;
});
afterAll(async () => {
  const { db: appDb } = await import("../db");
  await appDb().$disconnect();
  await db.$disconnect();
  await database.drop();
});

describe("tRPC mutations only from the dashboard's own origin", () => {
  it("refuses a forged cross-site mutation with 403, changes nothing, and audits it", async () => {
    for (const [name, headers] of [
      ["evil-origin", { origin: "https://evil.example" }],
      ["null-origin", { origin: "null" }],
      ["cross-site", { "sec-fetch-site": "cross-site" }],
      ["no-origin", {}],
      // A look-alike of a trusted origin is not it.
      ["lookalike", { origin: "http://127.0.0.1:3000.evil.example" }],
    ] as const) {
      const res = await createUserCall(name, headers);
      expect(res.status, name).toBe(403);
      expect(await res.text()).toContain("only from the dashboard");
    }
    expect(await db.user.count({ where: { username: { not: "boss" } } })).toBe(0);
    const refused = await db.auditAction.findMany({
      where: { action: "users.create", outcome: "refused" },
      select: { actor: true, detail: true, params: true },
      orderBy: { id: "asc" },
    });
    expect(refused).toHaveLength(5);
    expect(refused[0]).toMatchObject({
      actor: "boss",
      detail: "cross-origin: a request from https://evil.example, not from this dashboard",
      params: { origin: "https://evil.example", client: "10.4.0.1" },
    });
    expect(refused[3]!.detail).toBe("cross-origin: a request without an Origin header");
  });

  it("accepts the public URL, a configured extra origin, and same-origin fetches", async () => {
    expect((await createUserCall("from-public", { origin })).status).toBe(200);
    expect(
      (await createUserCall("from-extra", { origin: "https://dash.example.net" })).status,
    ).toBe(200);
    expect((await createUserCall("same-origin", { "sec-fetch-site": "same-origin" })).status).toBe(
      200,
    );
    expect(
      (await db.user.findMany({ select: { username: true }, orderBy: { username: "asc" } })).map(
        (u) => u.username,
      ),
    ).toEqual(["boss", "from-extra", "from-public", "same-origin"]);
  });

  it("leaves queries readable from the dashboard without an Origin (GET)", async () => {
    const res = await trpc.GET(
      new Request(`${origin}/api/trpc/session.me`, {
        headers: { cookie, [peerHeader]: "10.4.0.1" },
      }),
    );
    expect(res.status).toBe(200);
  });
});
