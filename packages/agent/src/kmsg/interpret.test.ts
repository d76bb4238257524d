import { describe, expect, it } from "vitest";
import type { THostEvent } from "../events/event.ts";
import { MirrorMap, ZMirrorConfig } from "../events/mirror-map.ts";
import { PageCoalescer } from "./coalesce.ts";
import { KmsgInterpreter } from "./interpret.ts";
import { dictDevice, type KmsgRecord, KmsgSplitter, parseKmsgRecord } from "./record.ts";

const boot = Date.UTC(2026, 0, 1);

function interpreter(extra: Partial<ConstructorParameters<typeof KmsgInterpreter>[0]> = {}) {
  return new KmsgInterpreter({
    nodeId: "n1",
    bootId: "b1",
    bootWallMs: boot,
    coalesceWindowUsec: 1_000_000,
    ...extra,
  });
}

function rec(seq: number, message: string, tsUsec = seq * 10, flags = "-"): KmsgRecord {
  return { facility: 0, level: 3, seq, tsUsec, flags, message };
}

const mf = (pfn: number, type = "dirty LRU page", result = "Recovered") =>
  `Memory failure: 0x${pfn.toString(16)}: recovery action for ${type}: ${result}`;

function run(i: KmsgInterpreter, records: KmsgRecord[]): THostEvent[] {
  const out: THostEvent[] = [];
  for (const r of records) out.push(...i.accept(r));
  out.push(...i.drain());
  return out;
}

describe("kmsg records", () => {
  it("parses the header, level, facility and dictionary", () => {
    const r = parseKmsgRecord(
      "3,1234,5678901,-;I/O error, dev nvme0n1, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0\n SUBSYSTEM=block\n DEVICE=b259:0",
    );
    expect(r).toEqual({
      facility: 0,
      level: 3,
      seq: 1234,
      tsUsec: 5678901,
      flags: "-",
      message: "I/O error, dev nvme0n1, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0",
      dict: { SUBSYSTEM: "block", DEVICE: "b259:0" },
    });
    expect(parseKmsgRecord("11,7,8,c,extra;hi")).toMatchObject({
      facility: 1,
      level: 3,
      flags: "c",
      message: "hi",
    });
    expect(dictDevice({ DEVICE: "b259:0" })).toBe("259:0");
    expect(dictDevice({ DEVICE: "+nvme:nvme0" })).toBe("nvme0");
  });

  it("refuses malformed and overlong records", () => {
    for (const bad of [
      "",
      "hello",
      "3,x,1,-;m",
      "3,1,2-;m",
      `3,1,1,-;${"x".repeat(20_000)}`,
      "\u0000\u0001\u0002;",
    ])
      expect(parseKmsgRecord(bad)).toBeNull();
  });

  it("splits a recorded log into records, bounding unterminated garbage", () => {
    const s = new KmsgSplitter();
    const out = [
      ...s.push("6,1,10,-;first\n SUBSYSTEM=x\n6,2,"),
      ...s.push("20,-;second\n"),
      ...s.push("z".repeat(40_000)),
      ...s.push("\n6,3,30,-;third"),
    ];
    out.push(...s.push("\n"), ...s.flush());
    expect(out).toEqual(["6,1,10,-;first\n SUBSYSTEM=x", "6,2,20,-;second", "6,3,30,-;third"]);
    expect(s.discardedBytes).toBeGreaterThanOrEqual(40_000);
  });
});

describe("coalescing per-page reports into ranges (PB6)", () => {
  it("turns a contiguous storm into one range row", () => {
    const i = interpreter();
    const records = Array.from({ length: 1000 }, (_, k) => rec(k + 1, mf(0x100000 + k)));
    const events = run(i, records);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      key: "n1:b1:kmsg:1",
      kind: "memory_failure",
      range: { start: String(0x100000), end: String(0x100000 + 999), unit: "pfn" },
      count: 1000,
      kernelSeq: 1,
      occurredAt: boot,
      simulated: false,
      data: { pageType: "dirty LRU page", result: "Recovered", lastSeq: 1000 },
    });
  });

  it("splits on a gap, another outcome, another page type, or a pause longer than the window", () => {
    const i = interpreter();
    const events = run(i, [
      rec(1, mf(10)),
      rec(2, mf(11)),
      rec(3, mf(13)), // gap
      rec(4, mf(14, "dirty LRU page", "Failed")), // other result: its own run
      rec(5, mf(14)),
      rec(6, mf(15, "clean LRU page")),
      rec(7, mf(15), 5_000_000), // pause > 1 s
    ]);
    expect(
      events.map((e) => [e.range?.start, e.range?.end, e.data.result, e.data.pageType]),
    ).toEqual(
      [
        ["10", "11", "Recovered", "dirty LRU page"],
        ["13", "14", "Recovered", "dirty LRU page"],
        ["14", "14", "Failed", "dirty LRU page"],
        ["15", "15", "Recovered", "clean LRU page"],
        ["15", "15", "Recovered", "dirty LRU page"],
      ].sort((a, b) => Number(a[0]) - Number(b[0]) || String(a[2]).localeCompare(String(b[2]))),
    );
  });

  it("keeps interleaved runs of different outcomes apart and whole", () => {
    const c = new PageCoalescer({ windowUsec: 1e6 });
    const closed = [];
    for (let k = 0; k < 100; k++) {
      closed.push(
        ...c.push({
          pfn: 1000 + k,
          pageType: "t",
          result: "Recovered",
          simulated: false,
          seq: 2 * k,
          tsUsec: k,
          rawLine: "",
        }),
      );
      closed.push(
        ...c.push({
          pfn: 5000 + k,
          pageType: "t",
          result: "Failed",
          simulated: false,
          seq: 2 * k + 1,
          tsUsec: k,
          rawLine: "",
        }),
      );
    }
    closed.push(...c.drain());
    expect(closed.map((r) => [r.firstPfn, r.lastPfn, r.count])).toEqual([
      [1000, 1099, 100],
      [5000, 5099, 100],
    ]);
  });

  it("tags outcome lines for injected pfns as simulated, and only those", () => {
    const events = run(interpreter(), [
      rec(1, "Injecting memory failure at pfn 0x500"),
      rec(2, mf(0x500)),
      rec(3, mf(0x900)),
    ]);
    expect(events.map((e) => [e.data.what, e.simulated, e.range?.start])).toEqual([
      ["injected", true, undefined],
      ["action_result", true, String(0x500)],
      ["action_result", false, String(0x900)],
    ]);
  });
});

describe("kmsg interpretation", () => {
  it("joins continuation fragments into one line", () => {
    const events = run(interpreter(), [
      rec(1, "Memory failure: 0x10: recovery action ", 10, "c"),
      rec(2, "for dirty LRU page: ", 11, "+"),
      rec(3, "Delayed", 12, "+"),
      rec(4, "nvme nvme0: IO queues lost"),
    ]);
    // The page report waits in its (open) range; the NVMe line is out at once.
    expect(events.map((e) => e.data.what)).toEqual(["nvme_io_queues_lost", "action_result"]);
    expect(events[1]?.data.result).toBe("Delayed");
  });

  it("skips what was already reported and reports a gap in sequence numbers", () => {
    const i = interpreter({ resumeAfterSeq: 10 });
    const events = run(i, [
      rec(9, "nvme nvme0: IO queues lost"),
      rec(10, "nvme nvme0: IO queues lost"),
      rec(14, "nvme nvme0: IO queues lost"),
    ]);
    expect(events.map((e) => [e.kind, e.data.what, e.count])).toEqual([
      ["agent", "kmsg_gap", 3],
      ["device_failure", "nvme_io_queues_lost", 1],
    ]);
  });

  it("gives the resume point before an open range, so a restart rebuilds it with the same key", () => {
    const i = interpreter();
    i.accept(rec(1, "nvme nvme0: IO queues lost"));
    i.accept(rec(2, mf(100)));
    i.accept(rec(3, mf(101)));
    expect(i.safeSeq()).toBe(1);
    const again = interpreter({ resumeAfterSeq: 1 });
    const events = run(again, [rec(2, mf(100)), rec(3, mf(101))]);
    expect(run(i, [])[0]?.key).toBe(events[0]?.key);
    expect(i.safeSeq()).toBe(3);
  });

  it("names the mirror, leg and regions of a failed range", () => {
    const mirrors = new MirrorMap([
      ZMirrorConfig.parse({
        name: "mirror0",
        regionSectors: 1024,
        sizeSectors: 1024 * 100,
        legs: [
          { device: "nvme0n1", aliases: ["259:0"], logicalBlockSize: 4096 },
          { device: "sdb", startSector: 2048 },
        ],
        logDevice: "253:5",
      }),
    ]);
    const events = run(interpreter({ mirrors }), [
      rec(1, "I/O error, dev sdb, sector 5120 op 0x1:(WRITE) flags 0x800 phys_seg 2 prio class 0"),
      rec(2, "nvme0n1: Write(0x1) @ LBA 256, 256 blocks, Write Fault (sct 0x2 / sc 0x80) "),
      rec(3, "nvme nvme0: Disabling device after reset failure: -19"),
      rec(
        4,
        "device-mapper: dirty region log: 253:5: Failed to write header on dirty region log device",
      ),
      {
        ...rec(5, "I/O error, dev ?, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0"),
        dict: { DEVICE: "b259:0" },
      },
    ]);
    expect(events.map((e) => [e.device, e.mirror, e.leg, e.regions])).toEqual([
      ["sdb", "mirror0", "sdb", { start: 3, end: 3 }],
      ["nvme0n1", "mirror0", "nvme0n1", { start: 2, end: 3 }],
      ["nvme0", undefined, undefined, undefined],
      ["253:5", "mirror0", "log", undefined],
      ["259:0", "mirror0", "nvme0n1", { start: 0, end: 0 }],
    ]);
  });

  it("converts kernel time to wall time", () => {
    const [e] = run(interpreter(), [rec(1, "nvme nvme0: IO queues lost", 2_500_000)]);
    expect(e?.occurredAt).toBe(boot + 2500);
    expect(e?.kernelTimeUs).toBe(2_500_000);
  });
});
