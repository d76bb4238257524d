import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCallerFactory, createContextInner } from "@mirrorplane/agent/api/trpc";
import { ResyncController } from "@mirrorplane/agent/clusterlog/resync-control";
import { DmsetupMirrorInventory } from "@mirrorplane/agent/mirrors/dmsetup-inventory";
import type { MirrorInventory } from "@mirrorplane/agent/mirrors/inventory";
import { agentRouter } from "@mirrorplane/agent/router";
import { afterEach, describe, expect, it } from "vitest";
import type { KernelTimings } from "./kernel/ulog-transfer.ts";
import { SimCluster } from "./simulated-cluster.ts";
import { SimMirrorInventory } from "./simulated-inventory.ts";

// resync.logs with a kernel inventory, through the agent API over a simulated cluster:
// legs with their health as node 1's simulated kernel reports them, region size, log type
// and size from the log's CTR; and, where the kernel cannot be asked (dmsetup without
// device-mapper), still the CTR's facts and the reason the legs are unknown.

const FAST: KernelTimings = {
  requestTimeoutMs: 400,
  esrchRetryMs: 40,
  remoteRecoveringWindowMs: 20,
  requeueMs: 10,
  lazyFlushMs: 80,
};
const TOKEN = "inventory-test-token";

let cluster: SimCluster | null = null;
let controller: ResyncController | null = null;
afterEach(async () => {
  controller?.stop();
  await cluster?.close();
  cluster = null;
});

async function setup(inventory: (c: SimCluster) => MirrorInventory) {
  const c = await SimCluster.start({
    dir: await mkdtemp(join(tmpdir(), "mp-inventory-")),
    nodes: 2,
    timings: FAST,
  });
  cluster = c;
  await c.addMirror({ name: "db", regions: 64, regionBytes: 8192, legs: 3, sync: "nosync" });
  await c.addMirror({ name: "tmp", regions: 16, regionBytes: 4096, disk: false, sync: "nosync" });
  controller = new ResyncController({
    server: c.servers()[0]!,
    nodeId: "node-1",
    inventory: inventory(c),
  });
  const caller = createCallerFactory(agentRouter)(
    createContextInner({
      presentedToken: TOKEN,
      expectedToken: TOKEN,
      services: {
        nodeInfo: () => {
          throw new Error("unused");
        },
        readKhugepaged: () => {
          throw new Error("unused");
        },
        resync: controller,
      },
    }),
  );
  return { c, caller };
}

describe("resync.logs with the kernel's mirror inventory", () => {
  it("reports legs and their health, the source leg, region size, log type and device, size", async () => {
    const { c, caller } = await setup((c) => new SimMirrorInventory(c, 1));
    // Node 1's kernel sees a write failure on leg 2 of db (its own view; node 2's is its own).
    c.mirrors.get("db")![0]!.failLeg(2);
    const logs = await caller.resync.logs();
    expect(logs.map((l) => l.uuid)).toEqual(["LVM-sim-db", "LVM-sim-tmp"]);
    const [db, tmp] = logs;
    expect(db).toMatchObject({
      regionCount: 64,
      inSync: 64,
      name: "db",
      logType: "clustered-disk",
      regionSectors: 16,
      sizeBytes: 64 * 8192,
      legsUnknownReason: null,
      logDevice: {
        device: join(c.options.dir, "db-log.img"),
        majorMinor: "253:0",
        health: "A",
      },
    });
    expect(db!.legs!.map((l) => [l.device, l.health, l.primary, l.source])).toEqual([
      [join(c.options.dir, "db-leg0.img"), "A", true, true],
      [join(c.options.dir, "db-leg1.img"), "A", false, false],
      [join(c.options.dir, "db-leg2.img"), "D", false, false],
    ]);
    expect(tmp).toMatchObject({
      logType: "clustered-core",
      regionSectors: 8,
      sizeBytes: 16 * 4096,
      logDevice: null,
    });
    expect(tmp!.legs!.map((l) => l.health)).toEqual(["A", "A"]);
  });

  it("without device-mapper: region size, log type and size from the CTR, and why no legs", async () => {
    const { caller } = await setup(
      () => new DmsetupMirrorInventory({ root: "/", binary: "/nonexistent/dmsetup" }),
    );
    const [db] = await caller.resync.logs();
    expect(db).toMatchObject({
      uuid: "LVM-sim-db",
      name: null,
      logType: "clustered-disk",
      regionSectors: 16,
      sizeBytes: 64 * 8192,
      legs: null,
      legsUnknownReason: "/nonexistent/dmsetup table --target mirror: not installed",
      // The CTR's log device argument, with the log server's health.
      logDevice: { device: "253:0", majorMinor: "253:0", health: "A" },
    });
  });
});
