import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../../testing/server-harness.ts";
import { HintRearmer } from "./rearm.ts";

// The agent's side of the hint guard: it suspends and resumes its own mirror when the
// replicated log says this node's kernel holds resync work back (hint-guard.ts).

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

const UUID = "LVM-test";

describe("HintRearmer", () => {
  it("re-arms the kernel a failed peer's regions wait on, and only that one", async () => {
    cluster = await TestCluster.create();
    const a = await cluster.startNode(1);
    const b = await cluster.startNode(2);
    await cluster.startNode(3);
    const ka = await cluster.kernel(1);
    const kb = await cluster.kernel(2);
    const kc = await cluster.kernel(3);
    for (const k of [ka, kb, kc]) await k.up("8192 clustered-core 1024 nosync");
    await kc.mark([4]);
    cluster.order.fail(3); // region 4 out of sync; every kernel's hint is rc
    const calls: string[] = [];
    const rearmerOf = (node: typeof a, kernel: typeof ka, name: string) =>
      new HintRearmer({
        server: node.server,
        log: pino({ level: "silent" }),
        rearm: async (uuid) => {
          calls.push(`${name}:${uuid}`);
          await kernel.suspendResume();
        },
      });
    const ra = rearmerOf(a, ka, "a");
    const rb = rearmerOf(b, kb, "b");
    try {
      // Nobody would ask for the work: the lowest member goes first…
      expect([ra.waiting(), rb.waiting()]).toEqual([[UUID], []]);
      ra.check();
      rb.check();
      await waitFor(() => ra.stats.rearms === 1);
      // …then, once it asks, the other kernel's hint is what holds region 4.
      expect(await ka.resyncWork()).toEqual([0, 0]);
      rb.check();
      await waitFor(() => rb.stats.rearms === 1);
      expect(await ka.resyncWork()).toEqual([1, 4]);
      expect(calls).toEqual([`a:${UUID}`, `b:${UUID}`]);
    } finally {
      ra.stop();
      rb.stop();
    }
  });

  it("a failed suspend/resume is reported and retried only after the back-off", async () => {
    cluster = await TestCluster.create();
    const a = await cluster.startNode(1);
    const ka = await cluster.kernel(1);
    await ka.up("8192 clustered-core 1024 nosync");
    await a.server.publishControl({
      kind: "resync",
      resync: { action: "start", uuid: UUID, id: "r1", first: 0, last: 3 },
    });
    let now = 1_000_000;
    let attempts = 0;
    const rearmer = new HintRearmer({
      server: a.server,
      log: pino({ level: "silent" }),
      retryMs: 30_000,
      now: () => now,
      rearm: async () => {
        attempts++;
        throw new Error("dmsetup suspend vg0-data failed: device busy");
      },
    });
    try {
      rearmer.check();
      await waitFor(() => rearmer.stats.failures === 1);
      expect(rearmer.stats.lastError.get(UUID)).toMatch(/device busy/);
      now += 29_000;
      rearmer.check();
      await new Promise((r) => setImmediate(r));
      expect(attempts).toBe(1);
      now += 2_000;
      rearmer.check();
      await waitFor(() => rearmer.stats.failures === 2);
      expect(attempts).toBe(2);
    } finally {
      rearmer.stop();
    }
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}
