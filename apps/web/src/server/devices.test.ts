import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "./agents";
import { createCaller } from "./root";
import { createContextInner } from "./trpc";

describe("memory and devices view (real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  const now = new Date("2026-06-10T00:00:00Z");
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "devices");
    db = createDb(database.url, { poolSize: 2 });
    const at = (min: number) => new Date(now.getTime() - min * 60_000);
    const base = { severity: "error" as const, source: "kmsg", nodeId: null };
    await db.event.createMany({
      data: [
        {
          ...base,
          idempotencyKey: "d1",
          kind: "device_failure",
          device: "nvme0n1",
          occurredAt: at(30),
          message: "timeout",
        },
        {
          ...base,
          idempotencyKey: "d2",
          kind: "device_failure",
          device: "nvme0n1",
          occurredAt: at(20),
          message: "reset",
        },
        {
          ...base,
          idempotencyKey: "d3",
          kind: "device_recovered",
          device: "nvme0n1",
          occurredAt: at(10),
          message: "live",
          severity: "info",
        },
        {
          ...base,
          idempotencyKey: "d4",
          kind: "device_failure",
          device: "sdb",
          occurredAt: at(5),
          message: "I/O error",
        },
        {
          ...base,
          idempotencyKey: "m1",
          kind: "memory_device_loss",
          device: "pmem0",
          occurredAt: at(3),
          message: "pmem0 removed",
          rangeStart: 0,
          rangeEnd: "1649267441663",
          rangeUnit: "pfn",
          count: 1,
          mirror: "LVM-abc",
          regionStart: 0,
          regionEnd: 3_145_727,
        },
      ],
    });
  });
  afterAll(async () => {
    await db.$disconnect();
    await database.drop();
  });

  it("shows each device's current health from its last report, and memory ranges with their mirror regions", async () => {
    const caller = createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory("unused-token-0123456789", 500),
        now: () => now,
        user: { id: "v", username: "vera", role: "viewer" },
      }),
    );
    const s = await caller.devices.summary({ days: 7 });
    expect(s.devices.map((d) => [d.device, d.health, d.failures])).toEqual([
      ["nvme0n1", "recovered", 2],
      ["sdb", "failed", 1],
    ]);
    expect(s.memory).toHaveLength(1);
    // A whole 6 TiB device is one row with one range, not 1.6 billion.
    expect(s.memory[0]).toMatchObject({
      kind: "memory_device_loss",
      rangeStart: "0",
      rangeEnd: "1649267441663",
      mirror: "LVM-abc",
      regionEnd: "3145727",
    });
  });
});
