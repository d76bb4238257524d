import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "../agents";
import { createCaller } from "../root";
import { createContextInner } from "../trpc";
import { LiveHub } from "./live-hub";
import type { LiveMessage } from "./live-state";

describe("live hub and stream (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let now = new Date("2026-05-01T00:00:00Z");
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "live");
    db = createDb(database.url, { poolSize: 2 });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  const addNode = (id: string, lastSeenAt: Date) =>
    db.node.create({
      data: {
        id,
        hostname: id,
        apiUrl: "http://127.0.0.1:1",
        agentVersion: "0",
        sampleIntervalMs: 10_000,
        startedAt: lastSeenAt,
        lastSeenAt,
      },
    });

  it("broadcasts a change set only when something operators see changed", async () => {
    const hub = new LiveHub({ db, intervalMs: 60_000, now: () => now });
    const got: LiveMessage[] = [];
    const stop = hub.subscribe((m) => got.push(m));
    await hub.poll();
    expect(got).toEqual([]); // empty database: nothing changed from empty
    await addNode("n1", now);
    await hub.poll();
    expect(got).toHaveLength(1);
    expect(got[0]).toMatchObject({
      version: 1,
      kind: "changes",
      changes: [{ type: "node", id: "n1", value: { freshness: "fresh" } }],
    });
    await hub.poll();
    expect(got).toHaveLength(1); // no change, no message
    now = new Date(now.getTime() + 40_000); // > 3 intervals without a report
    await hub.poll();
    expect(got[1]).toMatchObject({
      version: 2,
      changes: [{ type: "node", id: "n1", value: { freshness: "unknown" } }],
    });
    stop();
  });

  it("streams over the tRPC subscription: a snapshot first, then versioned changes", async () => {
    const hub = new LiveHub({ db, intervalMs: 60_000, now: () => now });
    const caller = createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory("unused-token-0123456789"),
        now: () => now,
        user: { id: "u", username: "vera", role: "viewer" },
        live: hub,
      }),
    );
    const controller = new AbortController();
    // The server-side caller yields `tracked` tuples and accepts an abort signal.
    const subscribe = caller.live.stream as unknown as (
      input: undefined,
      opts: { signal: AbortSignal },
    ) => Promise<AsyncIterable<[string, LiveMessage, symbol]>>;
    const stream = await subscribe(undefined, { signal: controller.signal });
    const iterator = stream[Symbol.asyncIterator]();
    // Each message is `tracked(version, message)`: [id, data, marker] on the server side.
    const first = await iterator.next();
    expect(first.value[0]).toBe("1");
    expect(first.value[1]).toMatchObject({ version: 1, kind: "snapshot" });
    await addNode("n2", now);
    await hub.poll();
    const second = await iterator.next();
    expect(second.value[1]).toMatchObject({
      version: 2,
      kind: "changes",
      changes: [{ type: "node", id: "n2" }],
    });
    controller.abort();
    await iterator.return?.();
  });

  it("a stream opened after nobody listened starts from what is there now, not from then", async () => {
    const hub = new LiveHub({ db, intervalMs: 60_000, now: () => now });
    const caller = createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory("unused-token-0123456789"),
        now: () => now,
        user: { id: "u", username: "vera", role: "viewer" },
        live: hub,
      }),
    );
    const subscribe = caller.live.stream as unknown as (
      input: undefined,
      opts: { signal: AbortSignal },
    ) => Promise<AsyncIterable<[string, LiveMessage, symbol]>>;
    const open = async () => {
      const controller = new AbortController();
      const iterator = (await subscribe(undefined, { signal: controller.signal }))[
        Symbol.asyncIterator
      ]();
      const first = (await iterator.next()).value[1] as LiveMessage;
      controller.abort();
      await iterator.return?.();
      return first;
    };
    const before = await open();
    expect(before.kind).toBe("snapshot");
    // The tab closed; meanwhile a node registered.
    await addNode("n3", now);
    const after = await open();
    expect(after).toMatchObject({ kind: "snapshot", version: before.version + 1 });
    expect(after.kind === "snapshot" && Object.keys(after.snapshot.nodes)).toContain("n3");
  });

  it("refuses the stream to signed-out callers", async () => {
    const caller = createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory("unused-token-0123456789"),
        now: () => now,
        user: null,
      }),
    );
    await expect(caller.live.stream()).rejects.toMatchObject({ code: "UNAUTHORIZED" });
  });
});
