import { join } from "node:path";
import { type AgentApiServer, readKhugepaged } from "@mirrorplane/agent";
import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "~/server/agents";
import { createCaller } from "~/server/root";
import { createContextInner } from "~/server/trpc";
import { startTestAgent } from "./agent-api";

const token = "router-test-token-0123456789";
const fixtureRoot = join(import.meta.dirname, "../../packages/agent/test/fixtures/thp-6.18");
const now = new Date("2026-03-01T12:00:00Z");

describe("control-plane routers (real Postgres, real agent API)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let agent: AgentApiServer;
  let caller: ReturnType<typeof createCaller>;

  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "web");
    db = createDb(database.url, { poolSize: 2 });
    agent = await startTestAgent(token, { readKhugepaged: () => readKhugepaged(fixtureRoot) });
    const base = {
      agentVersion: "0.1.0",
      kernelRelease: "6.18.44",
      sampleIntervalMs: 10_000,
      startedAt: new Date("2026-03-01T00:00:00Z"),
    };
    await db.node.createMany({
      data: [
        {
          ...base,
          id: "a-fresh",
          hostname: "a",
          apiUrl: agent.url,
          lastSeenAt: new Date(now.getTime() - 5_000),
        },
        {
          ...base,
          id: "b-late",
          hostname: "b",
          apiUrl: agent.url,
          lastSeenAt: new Date(now.getTime() - 20_000),
        },
        // Its agent is gone: nothing listens on port 1.
        {
          ...base,
          id: "c-gone",
          hostname: "c",
          apiUrl: "http://127.0.0.1:1",
          lastSeenAt: new Date(now.getTime() - 60_000),
        },
      ],
    });
    caller = createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory(token, 2_000),
        now: () => now,
        user: { id: "u-viewer", username: "vera", role: "viewer" },
      }),
    );
  });
  afterAll(async () => {
    await agent.close();
    await db.$disconnect();
    await database.drop();
  });

  it("lists nodes with freshness turning unknown after three missed intervals", async () => {
    const nodes = await caller.nodes.list();
    expect(nodes.map((n) => [n.id, n.freshness])).toEqual([
      ["a-fresh", "fresh"],
      ["b-late", "late"],
      ["c-gone", "unknown"],
    ]);
  });

  it("reads current khugepaged values live through the node's agent API", async () => {
    const current = await caller.khugepaged.current({ nodeId: "a-fresh" });
    expect(current.source).toBe("agent");
    expect(current.tunables.pages_to_scan).toBe(4096);
    expect(current.counters.fullScans).toBe(56);
  });

  it("falls back to the last stored values, and says so, when the agent is unreachable", async () => {
    const lastSeenAt = new Date(now.getTime() - 60_000);
    await db.sample.createMany({
      data: [
        { nodeId: "c-gone", series: "khugepaged.pages_to_scan", at: lastSeenAt, value: 2048 },
        { nodeId: "c-gone", series: "khugepaged.full_scans", at: lastSeenAt, value: 9 },
      ],
    });
    const current = await caller.khugepaged.current({ nodeId: "c-gone" });
    expect(current.source).toBe("database");
    expect(current.error).toMatch(/agent unreachable/);
    expect(current.tunables.pages_to_scan).toBe(2048);
    expect(current.counters.fullScans).toBe(9);
  });

  it("rejects an unknown node", async () => {
    await expect(caller.khugepaged.current({ nodeId: "nope" })).rejects.toThrow(/no node/);
  });

  it("down-samples a series to at most maxPoints, keeping each bucket's last value", async () => {
    const start = now.getTime() - 3600_000;
    const rows = Array.from({ length: 3600 }, (_, i) => ({
      nodeId: "a-fresh",
      series: "vmstat.thp_fault_alloc",
      at: new Date(start + i * 1000),
      value: i,
    }));
    await db.sample.createMany({ data: rows });
    const result = await caller.khugepaged.series({
      nodeId: "a-fresh",
      series: ["vmstat.thp_fault_alloc", "vmstat.thp_split_page"],
      windowMs: 3600_000,
      maxPoints: 100,
    });
    const points = result.series["vmstat.thp_fault_alloc"]!;
    expect(points.length).toBeGreaterThan(90);
    expect(points.length).toBeLessThanOrEqual(101);
    expect(points.at(-1)!.v).toBe(3599);
    // Monotonic counter stays monotonic after down-sampling.
    expect(points.every((p, i) => i === 0 || p.v >= points[i - 1]!.v)).toBe(true);
    expect(result.series["vmstat.thp_split_page"]).toEqual([]);
  });

  it("puts counter increases and error events on one time axis", async () => {
    // The 3,600 thp_fault_alloc samples of the down-sampling test (0..3599, one a second).
    await db.event.createMany({
      data: [
        {
          idempotencyKey: "t1",
          nodeId: "a-fresh",
          kind: "memory_failure",
          severity: "warning",
          source: "kmsg",
          occurredAt: new Date(now.getTime() - 600_000),
          message: "m",
        },
        {
          idempotencyKey: "t2",
          nodeId: "a-fresh",
          kind: "device_failure",
          severity: "error",
          source: "kmsg",
          occurredAt: new Date(now.getTime() - 300_000),
          message: "d",
        },
        {
          idempotencyKey: "t3",
          nodeId: "b-late",
          kind: "device_failure",
          severity: "error",
          source: "kmsg",
          occurredAt: new Date(now.getTime() - 300_000),
          message: "other node",
        },
      ],
    });
    const t = await caller.khugepaged.timeline({
      nodeId: "a-fresh",
      windowMs: 3_600_000,
      buckets: 60,
    });
    expect(t.points.length).toBeGreaterThanOrEqual(60);
    // Increases per bucket add up to last − first bucket (the first bucket, samples 0..59, is the baseline).
    expect(t.points.reduce((sum, p) => sum + (p.faults ?? 0), 0)).toBe(3599 - 59);
    expect(t.points.reduce((sum, p) => sum + p.memory, 0)).toBe(1);
    expect(t.points.reduce((sum, p) => sum + p.device, 0)).toBe(1);
    expect(t.points.every((p) => (p.faults ?? 0) >= 0)).toBe(true);
  });

  it("validates input", async () => {
    await expect(
      caller.khugepaged.series({ nodeId: "a-fresh", series: [], windowMs: 60_000 }),
    ).rejects.toThrow();
  });
});
