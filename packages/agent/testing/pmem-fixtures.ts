import { join } from "node:path";
import { MirrorMap, ZMirrorConfig } from "../src/events/mirror-map.ts";

/** The `pmem-namespaces` fixture tree: six pmem regions, one namespace each. */
export const pmemFixtureRoot = join(import.meta.dirname, "../test/fixtures/pmem-namespaces");

/** Legs on the fixture's pmem devices (and partitions), each mirrored to another disk. */
export const fixtureMirrors = new MirrorMap(
  [
    {
      name: "m-p1",
      regionSectors: 1024,
      sizeSectors: 16510976,
      legs: [{ device: "pmem0p1", aliases: ["259:1"] }, { device: "nvme0n1p1" }],
    },
    {
      name: "m-p2",
      regionSectors: 1024,
      sizeSectors: 16510976,
      legs: [{ device: "pmem0p2" }, { device: "nvme0n1p2" }],
    },
    {
      name: "m-raw",
      regionSectors: 1024,
      legs: [{ device: "pmem1", startSector: 2048 }, { device: "sdc" }],
    },
    {
      name: "m-btt",
      regionSectors: 2048,
      sizeSectors: 4186112,
      legs: [{ device: "pmem3s" }, { device: "sdd" }],
    },
    {
      name: "m-p4",
      regionSectors: 1024,
      sizeSectors: 8253440,
      legs: [{ device: "pmem4" }, { device: "sde" }],
    },
    { name: "m-p5", regionSectors: 1024, legs: [{ device: "pmem5" }, { device: "sdf" }] },
  ].map((m) => ZMirrorConfig.parse(m)),
);
