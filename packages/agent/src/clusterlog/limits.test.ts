import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../../testing/server-harness.ts";

// Issue 15, holes 4 and 5, as a local client sees them: a CTR over the region or log limit
// fails with a clear errno and one log line that names the limit (not one per attempt), and
// CTRs naming a device that is not there no longer write a line each (2,528 in 93 s).

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe("limits of the cluster-log server (issue 15)", () => {
  it("refuses a CTR over the region limit with -EINVAL and says so once a minute", async () => {
    cluster = await TestCluster.create({ clusterLog: { maxRegions: 1000, maxLogs: 2 } });
    const node = await cluster.startNode(1);
    const kernel = await node.kernel();
    for (let i = 0; i < 20; i++) {
      kernel.luid = BigInt(100 + i);
      expect((await kernel.ctr(`${2 ** 31 * 1024} clustered-core 1024`)).error).toBe(-22);
    }
    const lines = node.logLines.filter((l) => l.includes("CTR refused"));
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/2147483648 regions is more than the limit of 1000 per log/);
    kernel.luid = 1n;
    expect((await kernel.ctr("4096 clustered-core 1024")).error).toBe(0);
    kernel.luid = 2n;
    expect((await kernel.ctr("4096 clustered-core 1024")).error).toBe(0);
    kernel.luid = 3n;
    expect((await kernel.ctr("4096 clustered-core 1024")).error).toBe(-28);
    const logs = node.logLines.filter((l) => l.includes("CTR refused: too many logs"));
    expect(logs.length).toBe(1);
    expect(logs[0]).toMatch(/node 1 already holds the limit of 2 logs/);
  });

  it("CTR + RESUME of logs on devices that are not there: one error line a minute, not one each", async () => {
    cluster = await TestCluster.create();
    const node = await cluster.startNode(1);
    const kernel = await node.kernel();
    for (let i = 0; i < 20; i++) {
      kernel.luid = BigInt(200 + i);
      kernel.uuid = `LVM-missing-${i}`;
      await kernel.ctr(`4096 clustered-disk 250:${i} 1024`);
      await kernel.resume();
    }
    const lines = node.logLines.filter((l) => l.includes("log device unavailable"));
    expect(lines.length).toBe(1);
  });
});
