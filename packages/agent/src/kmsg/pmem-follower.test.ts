import { appendFile, cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fixtureMirrors, pmemFixtureRoot } from "../../testing/pmem-fixtures.ts";
import type { THostEvent } from "../events/event.ts";
import { type EventSink, KmsgFollower } from "./follower.ts";

const log = pino({ level: "silent" });

class MemorySink implements EventSink {
  events: THostEvent[] = [];
  emit(events: THostEvent[]) {
    this.events.push(...events);
  }
  async flush() {}
}

const row = (e: THostEvent) => [
  e.kernelSeq,
  e.kind,
  e.device,
  e.mirror ?? null,
  e.leg ?? null,
  e.regions ?? null,
];

/**
 * DASHBOARD.md edge 4 end to end: the recorded kernel log of the `pmem-namespaces`
 * fixture through the follower, the interpreter and the pmem map read from its sysfs.
 */
describe("memory failures on pmem, from the kernel log to mirror regions", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "mirrorplane-pmem-kmsg-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const follower = (root: string, sink: EventSink) =>
    new KmsgFollower({
      root,
      nodeId: "n1",
      cursorPath: join(dir, "kmsg-cursor.json"),
      sink,
      log,
      pollMs: 60_000,
      coalesceWindowMs: 1000,
      mirrors: fixtureMirrors,
    });

  it("names device, mirror, leg and regions of each failed range, like device failures", async () => {
    const sink = new MemorySink();
    const f = follower(pmemFixtureRoot, sink);
    expect(await f.start()).toBe(true);
    await f.pollNow();
    await f.stop();
    const events = [...sink.events].sort(
      (a, b) => (a.kernelSeq ?? 0) - (b.kernelSeq ?? 0) || a.key.localeCompare(b.key),
    );
    expect(events.map(row)).toEqual([
      // Three dax pages on pmem0p1 across a region boundary: one range, regions 9–10.
      [2201, "memory_failure", "pmem0", "m-p1", "pmem0p1", { start: 9, end: 10 }],
      // The process killed for the first of them: the same place.
      [2204, "process_killed", "pmem0", "m-p1", "pmem0p1", { start: 9, end: 9 }],
      // A raw namespace only says "memory outside kernel control".
      [2205, "memory_failure", "pmem1", "m-raw", "pmem1", { start: 18, end: 18 }],
      // pmem4's data offset is unreadable: widened over its reserve (exact would be 2–2).
      [2206, "memory_failure", "pmem4", "m-p4", "pmem4", { start: 2, end: 134 }],
      // The info block / memmap of namespace0.0: the device, no data, no regions.
      [2207, "memory_failure", "pmem0", null, null, null],
      // devdax carries no block device, so no leg.
      [2208, "memory_failure", "dax2.0", null, null, null],
      // BTT remaps blocks: every region of the leg on pmem3s.
      [2209, "memory_failure", "pmem3s", "m-btt", "pmem3s", { start: 0, end: 2043 }],
      // A DRAM page: not placed on pmem.
      [2210, "memory_failure", null, null, null, null],
      // A device page on no known namespace: namespace5.0 (address unreadable), whole.
      [2211, "memory_failure", "pmem5", "m-p5", "pmem5", { start: 0, end: 8059 }],
      // Two pages across the end of pmem0p1 and the start of pmem0p2: one event per leg.
      [2212, "memory_failure", "pmem0", "m-p1", "pmem0p1", { start: 16123, end: 16123 }],
      [2212, "memory_failure", "pmem0", "m-p2", "pmem0p2", { start: 0, end: 0 }],
      // The injection line itself is no failure; its outcome is simulated, and placed.
      [2214, "memory_failure", null, null, null, null],
      [2215, "memory_failure", "pmem0", "m-p1", "pmem0p1", { start: 12, end: 12 }],
      // XFS on pmem0p2 told the device is going away: its whole leg.
      [2216, "memory_device_loss", "pmem0p2", "m-p2", "pmem0p2", { start: 0, end: 16123 }],
    ]);
    const bySeq = (seq: number) => events.filter((e) => e.kernelSeq === seq);
    expect(bySeq(2201)[0]).toMatchObject({
      range: { start: String(0x10907ff), end: String(0x1090801), unit: "pfn" },
      count: 3,
      message:
        "memory failure: 3 pages (pfn 0x10907ff–0x1090801), dax page: Recovered — on pmem0 (namespace0.0, fsdax) sectors 12280–12303",
      data: {
        memoryMap: {
          status: "mapped",
          hits: [
            {
              namespace: "namespace0.0",
              mode: "fsdax",
              device: "pmem0",
              sectors: { start: "12280", end: "12303" },
              exact: true,
            },
          ],
        },
      },
    });
    // Widened ranges say so, in the message and the data.
    expect(bySeq(2206)[0]!.message).toContain("sectors 2048–137223 (widened: data offset unknown)");
    expect(bySeq(2206)[0]!.data.memoryMap).toMatchObject({ hits: [{ exact: false }] });
    expect(bySeq(2207)[0]!.data.memoryMap).toMatchObject({
      hits: [{ metadata: true, sectors: null }],
    });
    expect(bySeq(2210)[0]!.data.memoryMap).toMatchObject({ status: "unresolved", hits: [] });
    expect(bySeq(2211)[0]!.data.memoryMap).toMatchObject({
      hits: [{ sectors: "whole", exact: false }],
    });
    expect(bySeq(2215)[0]!.simulated).toBe(true);
    // Split events have their own keys; every key is unique.
    expect(new Set(events.map((e) => e.key)).size).toBe(events.length);
  });

  it("still places a device that vanished before its kernel lines were read", async () => {
    await cp(pmemFixtureRoot, join(dir, "root"), { recursive: true });
    const root = join(dir, "root");
    const sink = new MemorySink();
    const f = follower(root, sink);
    await f.start();
    await f.pollNow();
    // namespace1.0 (pmem1) fails and is removed; the agent reads the log afterwards.
    // pfn 0x1480c00 is byte 0xc00000 of pmem1: sector 24576, region (24576 − 2048) / 1024 = 22.
    await rm(join(root, "sys/bus/nd/devices/namespace1.0"), { recursive: true });
    await rm(join(root, "sys/block/pmem1"), { recursive: true });
    await appendFile(
      join(root, "dev/kmsg"),
      "3,2217,5040000000,-;Memory failure: 0x1480c00: memory outside kernel control\n",
    );
    await f.pollNow();
    await f.stop();
    const last = sink.events.find((e) => e.kernelSeq === 2217)!;
    expect(row(last)).toEqual([
      2217,
      "memory_failure",
      "pmem1",
      "m-raw",
      "pmem1",
      { start: 22, end: 22 },
    ]);
    expect(last.data.memoryMap).toMatchObject({
      hits: [{ namespace: "namespace1.0", gone: true }],
    });
  });

  it("reads the same records to the same events after a restart", async () => {
    const first = new MemorySink();
    const f1 = follower(pmemFixtureRoot, first);
    await f1.start();
    await f1.pollNow();
    await f1.stop();
    await rm(join(dir, "kmsg-cursor.json"));
    const again = new MemorySink();
    const f2 = follower(pmemFixtureRoot, again);
    await f2.start();
    await f2.pollNow();
    await f2.stop();
    expect(again.events.map((e) => [e.key, e.mirror, e.regions]).sort()).toEqual(
      first.events.map((e) => [e.key, e.mirror, e.regions]).sort(),
    );
  });
});
