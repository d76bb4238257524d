import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCallerFactory, createContextInner } from "@mirrorplane/agent/api/trpc";
import { ResyncController } from "@mirrorplane/agent/clusterlog/resync-control";
import type { THostEvent } from "@mirrorplane/agent/events/event";
import { agentRouter } from "@mirrorplane/agent/router";
import { afterEach, describe, expect, it } from "vitest";
import type { KernelTimings } from "./kernel/ulog-transfer.ts";
import { SimCluster, WriteLoad } from "./simulated-cluster.ts";

// Resync control end to end: the agent API (tRPC caller with the cluster token) over a
// three-agent simulated cluster with simulated kernels under write load. Start a range
// resync and watch it reach 100 %, cancel one midway, throttle one; each leaves its
// events; the legs stay identical and no write is acknowledged on a clean region.

const FAST: KernelTimings = {
  requestTimeoutMs: 400,
  esrchRetryMs: 40,
  remoteRecoveringWindowMs: 20,
  requeueMs: 10,
  lazyFlushMs: 80,
};
const TOKEN = "resync-test-token";
const UUID = "LVM-sim-m";

async function until(what: string, condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await condition()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${what} never happened`);
}

// 64 regions, kcopyd paced at 5 ms a region, so a recovery is seen in progress.
const PACED = { regions: 64, recoveryDelayMs: 5 };

let cluster: SimCluster | null = null;
let controller: ResyncController | null = null;
afterEach(async () => {
  controller?.stop();
  await cluster?.close();
  cluster = null;
});

async function setup(mirror: { regions: number; recoveryDelayMs: number } = PACED) {
  const c = await SimCluster.start({
    dir: await mkdtemp(join(tmpdir(), "mp-resync-")),
    nodes: 3,
    timings: FAST,
  });
  cluster = c;
  // Created in sync: a resync has something to do only because we ask.
  await c.addMirror({
    name: "m",
    regions: mirror.regions,
    regionBytes: 4096,
    sync: "nosync",
    recoveryDelayMs: mirror.recoveryDelayMs,
  });
  const events: THostEvent[] = [];
  controller = new ResyncController({
    server: c.servers()[0]!,
    nodeId: "node-1",
    events: { emit: (e) => events.push(...(Array.isArray(e) ? e : [e])) },
    // Every host's mirror suspended and resumed, one node after the other.
    kick: (uuid) => c.suspendResume(uuid.replace("LVM-sim-", "")),
    sampleIntervalMs: 20,
    eventEverySamples: 5,
    simulated: true,
  });
  controller.start();
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
  const load = new WriteLoad(c.mirrors.get("m")!, { writers: 3, bytes: 512, pauseMs: 2 });
  await until("writes", () => load.acked >= 20);
  return { c, caller, events, load };
}

const whats = (events: THostEvent[]) => events.map((e) => String(e.data.what));

describe("resync control through the agent API", () => {
  it("a range resync reaches 100 %; progress names rate and recoverer; events start…done", async () => {
    const { c, caller, events, load } = await setup();
    expect(await caller.resync.logs()).toEqual([
      { uuid: UUID, regionCount: 64, inSync: 64, resyncId: null },
    ]);
    const started = await caller.resync.start({ uuid: UUID, first: 10, last: 41, actor: "ops" });
    expect(started.total).toBe(32);
    expect(started.inSync).toBeLessThan(32);
    await expect(caller.resync.start({ uuid: UUID })).rejects.toThrow(/already running/);
    await until("a recovering node and region reported", async () => {
      const p = (await caller.resync.progress({ uuid: UUID }))!;
      return p.state === "done" || (p.recoveringNode !== null && p.recoveringRegion !== null);
    });
    await until("done", async () => {
      const p = (await caller.resync.progress({ uuid: UUID }))!;
      if (p.recoveringRegion !== null) {
        expect(p.recoveringRegion).toBeGreaterThanOrEqual(10);
        expect(p.recoveringRegion).toBeLessThanOrEqual(41);
      }
      expect(p.percent).toBeGreaterThanOrEqual(0);
      expect(p.percent).toBeLessThanOrEqual(100);
      return p.state === "done";
    });
    const done = (await caller.resync.progress({ uuid: UUID }))!;
    expect(done).toMatchObject({ percent: 100, inSync: 32, state: "done" });
    expect(whats(events)[0]).toBe("start");
    expect(whats(events).at(-1)).toBe("done");
    expect(events[0]!.data.actor).toBe("ops");
    expect(new Set(events.map((e) => e.key)).size).toBe(events.length);
    await load.stop();
    expect(await c.legsIdentical("m")).toBe(true);
    expect(c.violations).toEqual([]);
  });

  it("cancelled midway: the sweep stops, nothing is called in sync, a resume finishes it", async () => {
    const { c, caller, events, load } = await setup();
    await caller.resync.start({ uuid: UUID, throttle: 4 });
    await until("some recovered", async () => {
      const p = (await caller.resync.progress({ uuid: UUID }))!;
      return p.inSync >= 2 && p.state === "running" && p.throttle === 4;
    });
    const cancelled = await caller.resync.cancel({ uuid: UUID, actor: "ops" });
    expect(cancelled.state).toBe("cancelled");
    expect(cancelled.inSync).toBeLessThan(64);
    expect(whats(events)).toContain("cancelled");
    const [log] = await caller.resync.logs();
    expect(log!.resyncId).toBeNull();
    expect(log!.inSync).toBeLessThan(64);
    await expect(caller.resync.cancel({ uuid: UUID })).rejects.toThrow(/no running resync/);
    // The next resume lets the sweep finish what the cancelled resync left out of sync.
    await c.suspendResume("m");
    await until("in sync after resume", () => c.inSync("m"));
    await load.stop();
    expect(await c.legsIdentical("m")).toBe(true);
    expect(c.violations).toEqual([]);
  });

  it("another member cancels it (its starter may be gone); the starter says who", async () => {
    const { c, caller, events, load } = await setup();
    await caller.resync.start({ uuid: UUID, throttle: 4 });
    const otherEvents: THostEvent[] = [];
    const other = new ResyncController({
      server: c.servers()[1]!,
      nodeId: "node-2",
      events: { emit: (e) => otherEvents.push(...(Array.isArray(e) ? e : [e])) },
      sampleIntervalMs: 20,
      simulated: true,
    });
    other.start();
    try {
      // Only its starter changes its rate; anyone may stop it.
      await expect(other.throttle(UUID, 8)).rejects.toThrow(/started on another member/);
      const cancelled = await other.cancel(UUID, "ops");
      expect(cancelled.state).toBe("cancelled");
      expect(whats(otherEvents)).toContain("cancelled");
      await until("the starter saw it", async () => {
        const p = (await caller.resync.progress({ uuid: UUID }))!;
        return p.state === "cancelled";
      });
      const seen = events.find((e) => e.data.what === "cancelled-elsewhere");
      expect(seen?.message).toBe(`resync of ${UUID} cancelled by member 2`);
      expect(whats(events)).not.toContain("failed");
      await expect(other.cancel(UUID)).rejects.toThrow(/no running resync/);
    } finally {
      other.stop();
    }
    await load.stop();
    expect(c.violations).toEqual([]);
  });

  it("throttled: every replica holds the window's allowance, the sweep finishes", async () => {
    const { c, caller, events, load } = await setup();
    await caller.resync.start({ uuid: UUID, first: 0, last: 23, throttle: 8 });
    // The allowance is replicated state: every agent sees the same budget for the window.
    const allowances = () =>
      c.servers().map((s) => s.clusterLog.state.groups.get(UUID)?.resync?.allowance);
    expect(allowances().every((a) => typeof a === "number" && a <= 8)).toBe(true);
    await until("done", async () => {
      const p = (await caller.resync.progress({ uuid: UUID }))!;
      expect(p.state === "paused").toBe(false); // a throttle never reads as a pause
      return p.state === "done";
    });
    const faster = await caller.resync.start({ uuid: UUID, first: 30, last: 33 });
    expect(faster.throttle).toBeNull();
    await caller.resync.throttle({ uuid: UUID, regionsPerSecond: 100 });
    await until(
      "second done",
      async () => (await caller.resync.progress({ uuid: UUID }))!.state === "done",
    );
    expect(whats(events)).toEqual(expect.arrayContaining(["start", "throttle", "done"]));
    await load.stop();
    expect(await c.legsIdentical("m")).toBe(true);
    expect(c.violations).toEqual([]);
  });

  it("a throttle holds from the first second: a large range is not swept all at once", async () => {
    // 2,048 regions and kcopyd unpaced: unthrottled, the sweep ends well within a second.
    const { c, caller, load } = await setup({ regions: 2048, recoveryDelayMs: 0 });
    await load.stop(); // no writer forces a region out of turn (the priority list)
    const before = Date.now();
    const started = await caller.resync.start({ uuid: UUID, throttle: 5 });
    // A couple of samples (a rate needs two), then some more sample intervals.
    await until(
      "two samples",
      async () => (await caller.resync.progress({ uuid: UUID }))!.rate !== null,
    );
    await new Promise((r) => setTimeout(r, 200));
    const p = (await caller.resync.progress({ uuid: UUID }))!;
    const elapsed = Date.now() - before;
    expect(p.state).not.toBe("done");
    // The limit in every one-second window begun so far, and a few regions in flight
    // when the limit was reached.
    const windows = Math.floor(elapsed / 1000) + 1;
    expect(p.inSync - started.inSync).toBeLessThanOrEqual(5 * windows + 4);
    await caller.resync.cancel({ uuid: UUID });
    expect(c.violations).toEqual([]);
  });

  it("an idle mirror's throttled resync goes on window after window: each allowance wakes every kernel", async () => {
    // No writer: a kernel told "no work" once its window was spent sleeps until something
    // wakes its worker (dm-raid1 asks only on I/O, a recovery ending, a resume). Each agent
    // wakes its own when an allowance arrives (wake.ts); without that this run stalls
    // after the first window, as it did on the real kernel (kernel lab, guest throttle).
    const { c, caller, load } = await setup({ regions: 64, recoveryDelayMs: 0 });
    await load.stop();
    await caller.resync.start({ uuid: UUID, first: 0, last: 23, throttle: 10 });
    await until(
      "an idle throttled resync done",
      async () => (await caller.resync.progress({ uuid: UUID }))!.state === "done",
    );
    expect(await c.legsIdentical("m")).toBe(true);
    expect(c.violations).toEqual([]);
  });

  it("unknown mirror and bad range are NOT_FOUND / BAD_REQUEST", async () => {
    const { caller, load } = await setup();
    await expect(caller.resync.start({ uuid: "LVM-none" })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    await expect(caller.resync.start({ uuid: UUID, first: 5, last: 64 })).rejects.toMatchObject({
      code: "BAD_REQUEST",
    });
    await load.stop();
  });
});
