import type { Operation } from "@mirrorplane/clusterlog";
import { afterEach, describe, expect, it } from "vitest";
import { TestCluster } from "../../testing/server-harness.ts";
import type { PublishAction } from "./in-process-bus.ts";

// The server's one publication path (issue 12): every publication — kernel request,
// io-done, control operation — is the server's prefix and a number through the bus's one
// `publish`; what is not seen in the order is re-published after a reconnection (P23) and
// nothing is applied twice; `publishControl` resolves once its operation is applied.

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

const UUID = "LVM-test";
const start = (id: string): Operation => ({
  kind: "resync",
  resync: { action: "start", uuid: UUID, id, first: 0, last: 3 },
});

/** A hook that loses or holds the next control operation, then orders everything. */
function controlHook() {
  const plan: PublishAction[] = [];
  return {
    plan,
    onPublish: (p: { op: Operation }): PublishAction =>
      p.op.kind === "resync" ? (plan.shift() ?? "order") : "order",
  };
}

describe("one publication path", () => {
  it("numbers every publication under one prefix; control resolves with its applied seq", async () => {
    const msgIds: string[] = [];
    cluster = await TestCluster.create({
      order: {
        onPublish: (p) => {
          msgIds.push(p.msgId);
          return "order";
        },
      },
    });
    const a = await cluster.startNode(1);
    const k = await cluster.kernel(1);
    await k.up("8192 clustered-core 1024 nosync");
    const seq = await a.server.publishControl(start("r1"));
    expect(seq).toBe(a.server.lastSeq);
    expect(a.server.clusterLog.state.groups.get(UUID)?.syncBits.count).toBeLessThan(8);
    // CTR, RESUME (the kernel's), then the control operation: one prefix, numbers 1, 2, 3.
    expect(msgIds).toHaveLength(3);
    const prefix = msgIds[0]!.replace(/\d+$/, "");
    expect(prefix).toMatch(/^p:1:[0-9a-f]+:$/);
    expect(msgIds).toEqual([1, 2, 3].map((n) => prefix + n));
  });

  it("a lost control operation is re-published on reconnection and applied once", async () => {
    const hook = controlHook();
    cluster = await TestCluster.create({ order: { onPublish: hook.onPublish } });
    const a = await cluster.startNode(1);
    const k = await cluster.kernel(1);
    await k.up("8192 clustered-core 1024 nosync");
    hook.plan.push("drop");
    let settled = false;
    const applied = a.server.publishControl(start("r1")).finally(() => {
      settled = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(settled).toBe(false); // lost: waits for the reconnection, not failed
    const before = a.server.lastSeq;
    cluster.order.reconnect(1);
    expect(await applied).toBe(before + 1);
    // A second reconnection re-publishes nothing: it was seen in the order.
    cluster.order.reconnect(1);
    expect(a.server.lastSeq).toBe(before + 1);
  });

  it("a held one's duplicate is ordered once; a stop rejects what was never ordered", async () => {
    const hook = controlHook();
    cluster = await TestCluster.create({ order: { onPublish: hook.onPublish } });
    const a = await cluster.startNode(1);
    const k = await cluster.kernel(1);
    await k.up("8192 clustered-core 1024 nosync");
    hook.plan.push("duplicate");
    const seq = await a.server.publishControl(start("r1"));
    cluster.order.releaseAll(); // the second copy, same id: de-duplicated
    expect(cluster.order.lastSeq).toBe(seq);

    hook.plan.push("hold");
    const held = a.server.publishControl(start("r2"));
    const outcome = held.then(
      () => "applied",
      (error: Error) => error.message,
    );
    k.client.destroy();
    await cluster.stopNode(1);
    expect(await outcome).toMatch(/stopped before the operation was ordered/);
  });
});
