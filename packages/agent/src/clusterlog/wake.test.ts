import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../../testing/server-harness.ts";
import { ResyncWaker } from "./wake.ts";

// The agent wakes its own idle mirror when the replicated log gives resync work back (a
// throttle window's allowance, a lifted limit, a release after re-arming): dm-raid1 asks
// for work only when its worker runs (wake.ts; test/kernel-lab/guest/throttle.ts shows the
// stall on the real kernel without it).

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

const UUID = "LVM-test";

async function oneNode() {
  cluster = await TestCluster.create();
  const a = await cluster.startNode(1);
  const ka = await cluster.kernel(1);
  await ka.up("8192 clustered-core 1024 nosync");
  return a;
}

describe("ResyncWaker", () => {
  it("wakes this host's mirror on an allowance to spend, a lifted limit and a release; not on an empty window, a cancel or another log", async () => {
    const a = await oneNode();
    const woken: string[] = [];
    const waker = new ResyncWaker({
      server: a.server,
      log: pino({ level: "silent" }),
      wake: async (uuid) => {
        woken.push(uuid);
      },
    });
    waker.start();
    const control = (resync: Parameters<typeof a.server.publishControl>[0] & { kind: "resync" }) =>
      a.server.publishControl(resync);
    try {
      await control({
        kind: "resync",
        resync: { action: "start", uuid: UUID, id: "r1", first: 0, last: 7, armed: true },
      });
      expect(woken).toEqual([]); // armed: nothing to hand out yet
      await control({
        kind: "resync",
        resync: { action: "allow", uuid: UUID, id: "r1", regions: 2 },
      });
      await control({ kind: "resync", resync: { action: "unpause", uuid: UUID, id: "r1" } });
      await waitFor(() => woken.length === 2);
      await control({
        kind: "resync",
        resync: { action: "allow", uuid: UUID, id: "r1", regions: 0 },
      });
      await control({
        kind: "resync",
        resync: { action: "allow", uuid: "LVM-other", id: "r1", regions: 3 },
      });
      await control({
        kind: "resync",
        resync: { action: "allow", uuid: UUID, id: "r1", regions: null },
      });
      await waitFor(() => woken.length === 3);
      await control({ kind: "resync", resync: { action: "cancel", uuid: UUID, id: "r1" } });
      // After the cancel there is no resync: a stray allowance wakes nothing.
      await control({
        kind: "resync",
        resync: { action: "allow", uuid: UUID, id: "r1", regions: 5 },
      });
      await new Promise((r) => setTimeout(r, 20));
      expect(woken).toEqual([UUID, UUID, UUID]);
      expect(waker.stats).toEqual({ wakes: 3, failures: 0 });
    } finally {
      waker.stop();
    }
  });

  it("one wake in flight per log: requests meanwhile run once after it; a failure is counted and the next request tries again", async () => {
    const a = await oneNode();
    let release: () => void = () => {};
    let calls = 0;
    let fail = false;
    const waker = new ResyncWaker({
      server: a.server,
      log: pino({ level: "silent" }),
      wake: async () => {
        calls++;
        if (fail) throw new Error("dd if=/dev/dm-0 iflag=direct failed: No such device");
        await new Promise<void>((r) => {
          release = r;
        });
      },
    });
    try {
      waker.request(UUID);
      waker.request(UUID);
      waker.request(UUID);
      expect(calls).toBe(1);
      release();
      await waitFor(() => calls === 2); // the two requests made meanwhile: one more wake
      release();
      await waitFor(() => waker.stats.wakes === 2);
      expect(calls).toBe(2);
      fail = true;
      waker.request(UUID);
      await waitFor(() => waker.stats.failures === 1);
      waker.request(UUID);
      await waitFor(() => waker.stats.failures === 2);
      expect(calls).toBe(4);
    } finally {
      waker.stop();
    }
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(condition()).toBe(true);
}
