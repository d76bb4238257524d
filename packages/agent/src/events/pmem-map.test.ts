import { beforeAll, describe, expect, it } from "vitest";
import { fixtureMirrors, pmemFixtureRoot as root } from "../../testing/pmem-fixtures.ts";
import { type PmemLayout, readPmemLayout } from "../collectors/pmem-layout.ts";
import type { THostEvent } from "./event.ts";
import { applyMemoryPlacement, PmemMap } from "./pmem-map.ts";

let layout: PmemLayout;
let map: PmemMap;
beforeAll(async () => {
  layout = await readPmemLayout(root);
  map = new PmemMap({ layout, pageSize: 4096, mirrors: fixtureMirrors });
});

/** The physical byte of sector `s` of a device whose sector 0 is at `dataStart`. */
const pfnOfSector = (dataStart: number, s: number) => Math.floor((dataStart + s * 512) / 4096);

describe("pfn → pmem device → mirror regions", () => {
  it("places fsdax pages on the block device past the info block, and on its partitions", () => {
    // pmem0's sector 0 is pfn0.1's resource, 0x1090200000 (namespace + 258 MiB reserve).
    const first = pfnOfSector(0x1090200000, 2048 + 1024 * 10);
    const p = map.placePfns(first - 1, first + 1)!;
    expect(p.status).toBe("mapped");
    expect(p.hits.map((h) => [h.device, h.bytes, h.exact, h.metadata])).toEqual([
      ["pmem0", { start: 12280n * 512n, end: 12304n * 512n - 1n }, true, false],
    ]);
    // pmem0p1 starts at sector 2048: partition sectors 10232–10255, regions 9–10.
    expect(p.hits[0]!.locations).toEqual([
      { device: "pmem0p1", mirror: "m-p1", leg: "pmem0p1", regions: { start: 9, end: 10 } },
    ]);
  });

  it("gives each mirror leg a range crosses its own event", () => {
    // The last page of pmem0p1 and the first of pmem0p2.
    const boundary = pfnOfSector(0x1090200000, 16513024);
    const event: THostEvent = {
      key: "n1:b:kmsg:9",
      kind: "memory_failure",
      severity: "warning",
      source: "kmsg",
      occurredAt: 0,
      device: null,
      message: "memory failure: 2 pages",
      range: { start: String(boundary - 1), end: String(boundary), unit: "pfn" },
      count: 2,
      simulated: false,
      data: { what: "action_result" },
    };
    const events = applyMemoryPlacement(event, map.placePfns(boundary - 1, boundary));
    expect(events.map((e) => [e.key, e.device, e.mirror, e.leg, e.regions, e.count])).toEqual([
      [
        "n1:b:kmsg:9@pmem0/m-p1/pmem0p1",
        "pmem0",
        "m-p1",
        "pmem0p1",
        { start: 16123, end: 16123 },
        2,
      ],
      ["n1:b:kmsg:9@pmem0/m-p2/pmem0p2", "pmem0", "m-p2", "pmem0p2", { start: 0, end: 0 }, 2],
    ]);
    expect(events[0]!.message).toBe(
      "memory failure: 2 pages — on pmem0 (namespace0.0, fsdax) sectors 16513016–16513031",
    );
  });

  it("says when the failure is in the namespace's own metadata, not data", () => {
    const p = map.placePfns(0x1080005, 0x1080005)!;
    expect(p.hits.map((h) => [h.device, h.bytes, h.metadata, h.locations])).toEqual([
      ["pmem0", null, true, []],
    ]);
    // Straddling the reserve's end: only the data part is mapped.
    const q = map.placePfns(0x10901ff, 0x1090200)!;
    expect(q.hits.map((h) => [h.bytes, h.metadata])).toEqual([[{ start: 0n, end: 4095n }, true]]);
  });

  it("places raw namespaces from their first byte, and devdax on the DAX instance", () => {
    const raw = map.placePfns(0x1480a00, 0x1480a00)!;
    expect(raw.hits.map((h) => [h.device, h.bytes, h.locations.map((l) => l.regions)])).toEqual([
      ["pmem1", { start: 10485760n, end: 10489855n }, [{ start: 18, end: 18 }]],
    ]);
    const dax = map.placePfns(0x1684300, 0x1684300)!;
    expect(dax.hits.map((h) => [h.device, h.mode, h.bytes, h.locations])).toEqual([
      ["dax2.0", "devdax", { start: 0x100000n, end: 0x100fffn }, []],
    ]);
  });

  it("widens by the reserve when the data start is unknown, covering every possible offset", () => {
    const pfn = 0x1804300;
    const p = map.placePfns(pfn, pfn)!;
    const hit = p.hits[0]!;
    expect([hit.device, hit.exact, hit.bytes]).toEqual([
      "pmem4",
      false,
      { start: 1048576n, end: 70258687n },
    ]);
    expect(hit.locations).toEqual([
      { device: "pmem4", mirror: "m-p4", leg: "pmem4", regions: { start: 2, end: 134 } },
    ]);
    expect(hit.note).toContain("widened by the 69206016-byte");
    // Whatever the real data offset within the reserve (0 … R), the true sectors are inside.
    const nsStart = 0x1800000000n;
    const reserve = 4294967296n - 4225761280n;
    for (const offset of [0n, 8192n, 0x200000n, reserve / 2n, reserve]) {
      const byte = BigInt(pfn) * 4096n - nsStart - offset;
      if (byte < 0n) continue;
      expect(byte).toBeGreaterThanOrEqual(hit.bytes!.start);
      expect(byte + 4095n).toBeLessThanOrEqual(hit.bytes!.end);
    }
    // The namespace's last page is data whatever the offset: the device's last sectors.
    const last = map.placePfns(0x18fffff, 0x18fffff)!.hits[0]!;
    expect([last.bytes?.end, last.locations.map((l) => l.regions)]).toEqual([
      4225761280n - 1n,
      [{ start: 8059, end: 8059 }],
    ]);
  });

  it("takes a BTT device whole: its map moves blocks", () => {
    const p = map.placePfns(0x1780100, 0x1780100)!;
    expect(
      p.hits.map((h) => [h.device, h.bytes, h.exact, h.locations.map((l) => l.regions)]),
    ).toEqual([["pmem3s", null, false, [{ start: 0, end: 2043 }]]]);
  });

  it("tells DRAM from unknown places, and takes a device page on an unknown namespace whole", () => {
    // namespace5.0's address is unreadable: a DRAM page cannot be ruled out of it…
    expect(map.placePfns(0x10e802, 0x10e802)).toMatchObject({ status: "unresolved", hits: [] });
    // …but a device page that is on no known namespace must be on it.
    const dev = map.placePfns(0x2000100, 0x2000100, { devicePage: true })!;
    expect(dev.hits.map((h) => [h.namespace, h.device, h.bytes, h.locations])).toEqual([
      [
        "namespace5.0",
        "pmem5",
        null,
        [{ device: "pmem5", mirror: "m-p5", leg: "pmem5", regions: { start: 0, end: 8059 } }],
      ],
    ]);
    // With every namespace placed, a page on none of them is not pmem.
    const placed = new PmemMap({
      layout: { namespaces: layout.namespaces.filter((n) => n.start !== null) },
      pageSize: 4096,
      mirrors: fixtureMirrors,
    });
    expect(placed.placePfns(0x10e802, 0x10e802)).toEqual({ status: "not_pmem", hits: [] });
    // No pmem at all: nothing to say.
    expect(new PmemMap({ layout: { namespaces: [] }, pageSize: 4096 }).placePfns(1, 1)).toBeNull();
  });

  it("uses the host's page size: a pfn is a 64 KiB page on such arm64 hosts", () => {
    const big = new PmemMap({ layout, pageSize: 65536, mirrors: fixtureMirrors });
    // 64 KiB pfn 0x109080 is the same address as 4 KiB pfn 0x1090800, 16 times larger.
    expect(big.placePfns(0x109080, 0x109080)!.hits[0]!.bytes).toEqual({
      start: 0x600000n,
      end: 0x60ffffn,
    });
    const unknown = new PmemMap({ layout, pageSize: null, mirrors: fixtureMirrors });
    expect(unknown.placePfns(0x1090800, 0x1090800)).toMatchObject({ status: "unresolved" });
  });

  it("finds the legs on a device the kernel names, whole", () => {
    const whole = (name: string) =>
      map.locateDevice(name).locations.map((l) => [l.device, l.mirror, l.regions]);
    const both = [
      ["pmem0p1", "m-p1", { start: 0, end: 16123 }],
      ["pmem0p2", "m-p2", { start: 0, end: 16123 }],
    ];
    for (const name of ["pmem0", "namespace0.0", "pfn0.1", "region0"])
      expect(whole(name)).toEqual(both);
    expect(whole("pmem0p2")).toEqual([["pmem0p2", "m-p2", { start: 0, end: 16123 }]]);
    expect(map.locateDevice("region3")).toEqual({
      devices: ["pmem3s"],
      locations: [
        { device: "pmem3s", mirror: "m-btt", leg: "pmem3s", regions: { start: 0, end: 2043 } },
      ],
    });
    expect(map.locateDevice("pmem7")).toEqual({ devices: ["pmem7"], locations: [] });
  });

  it("still places a namespace that went away, and says so", () => {
    const gone = new PmemMap({
      layout: {
        namespaces: layout.namespaces.map((n) => ({ ...n, gone: n.name === "namespace1.0" })),
      },
      pageSize: 4096,
      mirrors: fixtureMirrors,
    });
    const p = gone.placePfns(0x1480a00, 0x1480a00)!;
    expect(p.hits.map((h) => [h.device, h.gone])).toEqual([["pmem1", true]]);
  });
});
