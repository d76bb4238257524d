import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AgentApiServer } from "@mirrorplane/agent";
import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { replacementCandidates } from "~/lib/leg-replacement";
import { createAgentDirectory } from "~/server/agents";
import { createCaller } from "~/server/root";
import { createContextInner } from "~/server/trpc";
import { DiskInventory } from "../../packages/agent/src/disks/disk-inventory";
import { mirrorInventory } from "../../packages/agent/src/mirrors/dmsetup-inventory";
import {
  DISK_HOST_STATUS,
  DISK_HOST_TABLE,
  FAKE_SMARTCTL,
  writeDiskHostFixture,
} from "../../packages/agent/testing/disk-fixtures";
import { startTestAgent } from "./agent-api";

// The /devices page's disk inventory through the control plane: real Postgres, a real agent
// API whose disk inventory reads a sysfs fixture tree and runs smartctl (the fake one, which
// prints smartctl 7.3's JSON of drives this machine lacks), and an agent without the
// inventory (an older agent's answer).

const token = "disks-test-token-0123456789";

describe("disks with SMART (real Postgres, real agent API, sysfs fixture, fake smartctl)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let root: string;
  const agents: AgentApiServer[] = [];
  const caller = (role: "viewer" | "operator") =>
    createCaller(
      createContextInner({
        db,
        agents: createAgentDirectory(token, 10_000),
        now: () => new Date(),
        user: { id: role, username: role, role },
      }),
    );

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "mp-web-disks-"));
    await writeDiskHostFixture(root);
    const disks = new DiskInventory({
      root,
      smartctl: FAKE_SMARTCTL,
      intervalMs: 600_000,
      mirrors: async () => ({
        mirrors: await mirrorInventory(DISK_HOST_TABLE, DISK_HOST_STATUS, root),
        reason: null,
      }),
    });
    agents.push(await startTestAgent(token, { disks }), await startTestAgent(token));
    database = await createTestDatabase(inject("pgAdminUrl"), "disks");
    db = createDb(database.url, { poolSize: 2 });
    for (const [i, id] of ["storage-1", "storage-2"].entries())
      await db.node.create({
        data: {
          id,
          hostname: id,
          apiUrl: agents[i]!.url,
          agentVersion: "0",
          sampleIntervalMs: 60_000,
          startedAt: new Date(),
          lastSeenAt: new Date(),
        },
      });
  });
  afterAll(async () => {
    for (const agent of agents) await agent.close();
    await db.$disconnect();
    await database.drop();
    await rm(root, { recursive: true, force: true });
  });

  it("before SMART is read: each disk from sysfs with its legs; the older agent says it has none", async () => {
    const { nodes } = await caller("viewer").devices.disks();
    expect(nodes.map((n) => [n.nodeId, n.error])).toEqual([
      ["storage-1", null],
      [
        "storage-2",
        "this agent reports no disks (an agent older than the disk inventory, or a simulated cluster member)",
      ],
    ]);
    const disks = nodes[0]!.inventory!.disks;
    expect(disks.find((d) => d.name === "nvme1n1")).toMatchObject({
      kind: "nvme",
      model: "Samsung SSD 980 PRO 1TB",
      smart: { status: "pending", readAt: null },
      smartFreshness: null,
      legs: [{ mirror: "vg_data-lv_db", index: 1, device: "dm-2", health: "D" }],
    });
  });

  it("a viewer may not make the agent read SMART; an operator may, and the page gets the readings", async () => {
    await expect(caller("viewer").devices.refreshSmart({ nodeId: "storage-1" })).rejects.toThrow(
      /operator/,
    );
    expect(await caller("operator").devices.refreshSmart({ nodeId: "storage-1" })).toMatchObject({
      nodeId: "storage-1",
      disks: 9,
    });
    const { nodes } = await caller("viewer").devices.disks({ nodeId: "storage-1" });
    expect(nodes).toHaveLength(1);
    const byName = new Map(nodes[0]!.inventory!.disks.map((d) => [d.name, d]));
    expect(byName.get("nvme1n1")!.smart).toMatchObject({
      status: "failing",
      mediaErrors: 12,
      percentageUsed: 41,
    });
    expect(byName.get("nvme1n1")!.smartFreshness).toBe("fresh");
    expect(byName.get("sda")!.smart).toMatchObject({ status: "warning", reallocatedSectors: 24 });
    expect(byName.get("loop0")!.smart).toMatchObject({
      status: "unavailable",
      reasons: ["/dev/loop0: Unable to detect device type"],
    });

    // The leg replacement's step 1 on this inventory: leg 1 of lv_db (1953519616 sectors).
    const candidates = replacementCandidates(nodes[0]!.inventory!.disks, 1953519616 * 512);
    expect(candidates.filter((c) => c.excluded === null).map((c) => c.disk.name)).toEqual(["sdb"]);
    const why = new Map(candidates.map((c) => [c.disk.name, c.excluded]));
    expect(why.get("nvme1n1")).toBe("already leg 1 of vg_data-lv_db");
    expect(why.get("loop0")).toBe("already leg 0 of mp_scratch");
    // sda's partition holds a leg: the disk is taken too.
    expect(why.get("sda")).toBe("already leg 1 of mp_scratch");
  });

  it("an unknown node is a sentence, not a crash", async () => {
    await expect(caller("operator").devices.refreshSmart({ nodeId: "nowhere" })).rejects.toThrow(
      "no node nowhere",
    );
  });
});
