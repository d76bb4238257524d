import type { AgentApiServer } from "@mirrorplane/agent";
import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "~/server/agents";
import { createCaller } from "~/server/root";
import { createContextInner } from "~/server/trpc";
import { startTestAgent } from "./agent-api";

// Cluster membership on the nodes page (issue 13), through real agent APIs: one with a
// cluster-log replica (its membership as the agent reports it), one without.

const token = "membership-test-token-0123456789";
const now = new Date("2026-12-03T08:00:00Z");

describe("nodes.membership (real Postgres, real agent APIs)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const agents: AgentApiServer[] = [];
  beforeAll(async () => {
    agents.push(
      await startTestAgent(token, {
        membership: () => ({
          nodeId: 2,
          members: [1, 2, 3],
          servedBy: { "LVM-a": 1 },
          recent: [
            { kind: "node-join", node: 3, by: 3, seq: 10, at: now.getTime() - 60_000 },
            { kind: "node-failed", node: 4, by: 1, seq: 11, at: now.getTime() - 30_000 },
            { kind: "server", node: 1, by: 1, seq: 12, at: now.getTime(), uuid: "LVM-a" },
          ],
          order: { kind: "jetstream", connected: false },
        }),
      }),
      await startTestAgent(token),
    );
    database = await createTestDatabase(inject("pgAdminUrl"), "membership");
    db = createDb(database.url, { poolSize: 2 });
    for (const [i, id] of ["m-clustered", "m-plain"].entries())
      await db.node.create({
        data: {
          id,
          hostname: id,
          apiUrl: agents[i]!.url,
          agentVersion: "0",
          sampleIntervalMs: 10_000,
          startedAt: now,
          lastSeenAt: now,
        },
      });
  });
  afterAll(async () => {
    for (const a of agents) await a.close();
    await db.$disconnect();
    await database.drop();
  });

  it("says each node's members, who serves, the order's state and the changes; or why not", async () => {
    const caller = createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory(token),
        now: () => now,
        user: { id: "v", username: "vera", role: "viewer" },
      }),
    );
    const [clustered, plain] = await caller.nodes.membership();
    expect(clustered).toMatchObject({
      nodeId: "m-clustered",
      note: null,
      membership: {
        memberId: 2,
        members: [1, 2, 3],
        servedBy: { "LVM-a": 1 },
        order: { kind: "jetstream", connected: false },
      },
    });
    expect(clustered!.membership!.recent.map((r) => [r.kind, r.node, r.by])).toEqual([
      ["node-join", 3, 3],
      ["node-failed", 4, 1],
      ["server", 1, 1],
    ]);
    expect(clustered!.membership!.recent[0]!.at).toEqual(new Date(now.getTime() - 60_000));
    expect(plain).toEqual({
      nodeId: "m-plain",
      membership: null,
      note: "This agent runs no cluster-log server",
    });
  });
});
