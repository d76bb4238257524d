import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../../testing/server-harness.ts";
import { registerMembershipMetrics } from "../metrics.ts";

// Membership as every member sees it (issue 14: only the declaring member said a member
// failed; nobody logged a join, a leave or who serves a log). Three members in one order.

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

const linesOf = (c: TestCluster, node: number, re: RegExp) =>
  c
    .node(node)
    .logLines.map((l) => JSON.parse(l) as { msg: string; [k: string]: unknown })
    .filter((l) => re.test(l.msg));

describe("membership lines and view on every member", () => {
  it("joins, a failure and the serving node change are logged and kept on each member", async () => {
    const c = await TestCluster.create();
    cluster = c;
    for (const id of [1, 2, 3]) await c.startNode(id);
    const kernels = [];
    for (const id of [1, 2, 3]) {
      const k = await c.kernel(id);
      k.uuid = "LVM-members";
      k.luid = BigInt(id);
      await k.up("40960 clustered-core 1024");
      kernels.push(k);
    }
    // Node 1 resumed first: it serves the log, everywhere.
    for (const id of [1, 2, 3]) {
      expect(c.node(id).server.membership().servedBy).toEqual({ "LVM-members": 1 });
    }
    // Node 1 dies; the survivors say so, and that node 2 serves the log now.
    c.order.fail(1);
    await kernels[1]!.isClean(0);
    await kernels[2]!.isClean(0);
    for (const id of [2, 3]) {
      const failed = linesOf(c, id, /cluster member 1 declared failed/);
      expect(failed.length, `node ${id}`).toBe(1);
      expect(failed[0]!.members).toEqual([2, 3]);
      expect(linesOf(c, id, /log LVM-members served by node 2/).length).toBe(1);
      const view = c.node(id).server.membership();
      expect(view.members).toEqual([2, 3]);
      expect(view.servedBy).toEqual({ "LVM-members": 2 });
      expect(view.recent.some((e) => e.kind === "node-failed" && e.node === 1)).toBe(true);
    }
    // Node 3 joined after 2 and 1: node 2 saw it join.
    expect(linesOf(c, 2, /cluster member 3 joined/).length).toBe(1);
    // And /metrics says the same, read at scrape time.
    const registry = new Registry();
    registerMembershipMetrics(registry, c.node(3).server);
    const text = await registry.metrics();
    expect(text).toContain("mirrorplane_clusterlog_members 2");
    expect(text).toContain('mirrorplane_clusterlog_log_server_node{uuid="LVM-members"} 2');
  });
});
