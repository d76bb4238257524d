import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  khugepagedSeries,
  khugepagedTunables,
  parseSelected,
  parseSysfsInteger,
  parseVmstat,
  readKhugepaged,
} from "./khugepaged.ts";

const fixtures = join(import.meta.dirname, "../../test/fixtures");

describe("khugepaged collector on fixture trees", () => {
  it("reads every tunable, counter and [selected] knob of a 6.18 host", async () => {
    const s = await readKhugepaged(join(fixtures, "thp-6.18"));
    expect(s.available).toBe(true);
    expect(s.tunables).toEqual({
      pages_to_scan: 4096,
      scan_sleep_millisecs: 10000,
      alloc_sleep_millisecs: 60000,
      defrag: 1,
      max_ptes_none: 511,
      max_ptes_swap: 64,
      max_ptes_shared: 256,
    });
    expect(s.counters).toEqual({ pagesCollapsed: 1234, fullScans: 56 });
    expect(s.thp).toEqual({
      enabled: "madvise",
      defrag: "madvise",
      shmemEnabled: "never",
      hpagePmdSize: 2097152,
    });
    expect(s.vmstat.thp_collapse_alloc).toBe(42);
    expect(s.vmstat.thp_fault_alloc).toBe(98765);
    // Only THP/collapse/compaction fields are kept.
    expect(
      Object.keys(s.vmstat).every((k) =>
        /^(thp_|nr_.*hugepages|compact_|pg\w+_khugepaged)/.test(k),
      ),
    ).toBe(true);
    expect(s.vmstat.nr_free_pages).toBeUndefined();
  });

  it("tolerates missing and corrupt files: unknown is null, never 0", async () => {
    const s = await readKhugepaged(join(fixtures, "arm64-64k-partial"));
    expect(s.available).toBe(true);
    expect(s.tunables.pages_to_scan).toBe(65536);
    expect(s.tunables.max_ptes_none).toBe(8191);
    expect(s.tunables.scan_sleep_millisecs).toBeNull();
    expect(s.counters).toEqual({ pagesCollapsed: null, fullScans: null });
    expect(s.thp.enabled).toBe("always");
    expect(s.thp.hpagePmdSize).toBe(512 * 1024 * 1024);
    expect(s.vmstat).toEqual({ thp_fault_alloc: 7, thp_split_pmd: 3 });
  });

  it("reports a kernel without THP as unavailable", async () => {
    const s = await readKhugepaged(join(fixtures, "no-thp"));
    expect(s.available).toBe(false);
    expect(Object.values(s.tunables).every((v) => v === null)).toBe(true);
    expect(s.vmstat).toEqual({});
    expect(khugepagedSeries(s)).toEqual([]);
  });

  it("reports a root that does not exist as unavailable rather than failing", async () => {
    const s = await readKhugepaged(join(fixtures, "does-not-exist"));
    expect(s.available).toBe(false);
  });

  it("flattens into stable series names, skipping unknown values", async () => {
    const points = khugepagedSeries(await readKhugepaged(join(fixtures, "arm64-64k-partial")));
    expect(points).toEqual([
      ["khugepaged.pages_to_scan", 65536],
      ["khugepaged.max_ptes_none", 8191],
      ["vmstat.thp_fault_alloc", 7],
      ["vmstat.thp_split_pmd", 3],
    ]);
  });
});

describe("kernel file parsers", () => {
  it("parses sysfs integers strictly", () => {
    expect(parseSysfsInteger("4096\n")).toBe(4096);
    expect(parseSysfsInteger("0\n")).toBe(0);
    expect(parseSysfsInteger("")).toBeNull();
    expect(parseSysfsInteger("-1\n")).toBeNull();
    expect(parseSysfsInteger("12abc")).toBeNull();
    expect(parseSysfsInteger(null)).toBeNull();
    expect(parseSysfsInteger("99999999999999999999")).toBeNull();
  });

  it("parses the [selected] syntax", () => {
    expect(parseSelected("always [madvise] never\n")).toBe("madvise");
    expect(parseSelected("always defer defer+madvise [madvise] never")).toBe("madvise");
    expect(parseSelected("[always] inherit madvise never")).toBe("always");
    expect(parseSelected("always madvise never")).toBeNull();
  });

  it("parses vmstat lines and skips malformed ones", () => {
    expect(
      parseVmstat("thp_a 1\nbogus\nthp_b x\nthp_c 3\n\nnr_x 9", (n) => n.startsWith("thp_")),
    ).toEqual({
      thp_a: 1,
      thp_c: 3,
    });
  });
});

describe("khugepaged collector on this host's real kernel files", () => {
  const base = "/sys/kernel/mm/transparent_hugepage";
  let present = true;
  try {
    readFileSync(`${base}/khugepaged/pages_to_scan`);
  } catch {
    present = false;
  }

  it.runIf(present)("reads the same numbers `cat` prints from sysfs", async () => {
    const s = await readKhugepaged("/");
    for (const name of khugepagedTunables) {
      const text = readFileSync(`${base}/khugepaged/${name}`, "utf8").trim();
      expect(s.tunables[name], name).toBe(Number(text));
    }
    const enabled = readFileSync(`${base}/enabled`, "utf8");
    expect(s.thp.enabled).toBe(/\[([^\]]+)\]/.exec(enabled)?.[1]);
    const vmstat = readFileSync("/proc/vmstat", "utf8");
    expect(vmstat).toContain(`thp_fault_alloc `);
    expect(s.vmstat.thp_fault_alloc).toBeGreaterThanOrEqual(0);
  });
});
