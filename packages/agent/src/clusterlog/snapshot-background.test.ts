import { ClusterLog } from "@mirrorplane/clusterlog";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, type Kernel, TestCluster } from "../../testing/server-harness.ts";

// Issue 15: the snapshot of a large log is made in the background, a bounded amount per
// event-loop turn, so a request on another connection is answered while it is being made;
// and its bytes are those of the position it was started at, so a joiner starting from it
// ends up byte-identical to the member that made it.

const A = 1;
const B = 2;
const BIG = 2 ** 24; // regions: 4 MiB of bitmaps, the default limit
const LAST = BIG - 1;

let c: TestCluster | null = null;
afterEach(async () => {
  await c?.close();
  c = null;
});

/** A node with a 2^24-region log (out of sync) and a small one, each on its own connection. */
async function setUp(): Promise<{ big: Kernel; small: Kernel }> {
  // 4 KiB a turn: the big log's snapshot takes 1,024 turns to make.
  c = await TestCluster.create({ snapshotEvery: 8, snapshotBytesPerTurn: 4096 });
  await c.startNode(A);
  const big = await c.kernel(A);
  big.uuid = "LVM-big";
  await big.up(`${BIG * 1024} clustered-core 1024 sync`);
  const small = await c.kernel(A);
  small.uuid = "LVM-small";
  await small.up("40960 clustered-core 1024");
  return { big, small };
}

/** Marks on the big log until one of them starts a background snapshot. */
async function untilSnapshotStarts(big: Kernel): Promise<void> {
  const server = c!.node(A).server;
  for (let i = 0; !server.snapshotInProgress; i++) {
    if (i > 64) throw new Error("no background snapshot started");
    expect((await big.mark([i])).error).toBe(0);
  }
}

describe("background snapshots (issue 15)", () => {
  it("answers another connection while a 2^24-region log's snapshot is made, and the snapshot is of its start", async () => {
    const { big, small } = await setUp();
    const server = c!.node(A).server;
    await untilSnapshotStarts(big);
    const saved = server.stats.snapshots;
    const position = server.clusterLog.position;

    // Another connection's requests, a read and an ordered write, are answered while the
    // snapshot is still being made.
    expect(await small.isClean(3)).toBeGreaterThanOrEqual(0);
    expect((await small.mark([3])).error).toBe(0);
    expect(await small.isClean(3)).toBe(0);
    // A change to a piece of the big log's bitmaps not copied yet (the last region).
    expect((await big.setRegionSync(LAST, true)).error).toBe(0);
    expect(server.clusterLog.state.groups.get("LVM-big")!.syncBits.test(LAST)).toBe(true);
    expect(server.snapshotInProgress).toBe(true);
    expect(server.stats.snapshots).toBe(saved);

    await eventually(() => !server.snapshotInProgress, "the snapshot finished");
    expect(server.stats.snapshots).toBe(saved + 1);
    const latest = c!.order.latestSnapshot!;
    const restored = ClusterLog.fromSnapshot(latest.bytes);
    if (!restored.ok) throw new Error(restored.error.message);
    // Of the position it was started at: before the small log's mark and the big log's
    // last region set in sync.
    expect(restored.value.position).toBeLessThanOrEqual(position);
    expect(restored.value.state.groups.get("LVM-big")!.syncBits.test(LAST)).toBe(false);
    expect(restored.value.state.groups.get("LVM-small")!.markers.has(3)).toBe(false);
    expect(Buffer.from(restored.value.snapshot()).equals(Buffer.from(latest.bytes))).toBe(true);

    // A joiner starts from it, replays the order after it, and is byte-identical.
    await c!.startNode(B);
    const joiner = c!.node(B).server;
    await eventually(() => joiner.lastSeq === server.lastSeq, "the joiner caught up");
    expect(
      Buffer.from(joiner.clusterLog.snapshot()).equals(Buffer.from(server.clusterLog.snapshot())),
    ).toBe(true);
  });

  it("stop() gives up a snapshot still being made and saves the final state", async () => {
    const { big, small } = await setUp();
    const server = c!.node(A).server;
    await untilSnapshotStarts(big);
    expect((await small.mark([5])).error).toBe(0);
    expect(server.snapshotInProgress).toBe(true);
    const saved = server.stats.snapshots;
    // What stop() must hand over: the state after the drain, before the bus's node-leave.
    const expected = Buffer.from(server.clusterLog.snapshot());
    await c!.stopNode(A);
    expect(server.snapshotInProgress).toBe(false);
    expect(server.stats.snapshots).toBe(saved + 1); // the final one, not the one given up
    const final = c!.order.latestSnapshot!;
    expect(Buffer.from(final.bytes).equals(expected)).toBe(true);
    const restored = ClusterLog.fromSnapshot(final.bytes);
    if (!restored.ok) throw new Error(restored.error.message);
    expect(restored.value.state.groups.get("LVM-small")!.markers.get(5)).toEqual([A]);
    // Nothing of the given-up one arrives later.
    await new Promise((resolve) => setImmediate(resolve));
    expect(server.stats.snapshots).toBe(saved + 1);
  });
});
