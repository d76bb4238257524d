import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { THostEvent } from "../events/event.ts";
import {
  choiceOptions,
  kstrtoulBase10,
  TunableError,
  TunableWriter,
  validateTunable,
} from "./tunables.ts";

const x86 = { hpagePmdSize: 2 * 1024 * 1024, pageSize: 4096 };
const arm64k = { hpagePmdSize: 512 * 1024 * 1024, pageSize: 65536 };
type Limits = { hpagePmdSize: number | null; pageSize: number | null };
const ok = (
  name: string,
  value: string | number,
  current: string | null = "0\n",
  limits: Limits = x86,
) => validateTunable(name, value, current, limits);
const bad = (
  name: string,
  value: string | number,
  current: string | null = "0\n",
  limits: Limits = x86,
) => expect(() => validateTunable(name, value, current, limits)).toThrow(TunableError);

describe("kernel validation of khugepaged/THP tunables (KERNEL-SOURCES §4)", () => {
  it("parses like kstrtoul base 10", () => {
    expect(kstrtoulBase10("42", 100n)).toBe(42n);
    expect(kstrtoulBase10("+42\n", 100n)).toBe(42n);
    expect(kstrtoulBase10("007", 100n)).toBe(7n);
    for (const s of ["", "-1", "0x10", " 1", "1 ", "1\n\n", "1.0", "１"])
      expect(typeof kstrtoulBase10(s, 100n)).toBe("string");
    expect(kstrtoulBase10("101", 100n)).toContain("ERANGE");
  });

  it("pages_to_scan ≥ 1 (unsigned int), sleeps may be 0", () => {
    bad("khugepaged/pages_to_scan", 0);
    expect(ok("khugepaged/pages_to_scan", 1)).toBe("1");
    expect(ok("khugepaged/pages_to_scan", "4294967295")).toBe("4294967295");
    bad("khugepaged/pages_to_scan", "4294967296");
    expect(ok("khugepaged/scan_sleep_millisecs", 0)).toBe("0");
    expect(ok("khugepaged/alloc_sleep_millisecs", "60000\n")).toBe("60000");
    bad("khugepaged/scan_sleep_millisecs", -1);
    bad("khugepaged/scan_sleep_millisecs", 1.5);
  });

  it("defrag and use_zero_page are 0 or 1", () => {
    expect(ok("khugepaged/defrag", 0)).toBe("0");
    expect(ok("khugepaged/defrag", "1")).toBe("1");
    bad("khugepaged/defrag", 2);
    bad("use_zero_page", "yes");
  });

  it("max_ptes_* ≤ hpage_pmd_size / page size − 1, computed for the host", () => {
    for (const name of [
      "khugepaged/max_ptes_none",
      "khugepaged/max_ptes_swap",
      "khugepaged/max_ptes_shared",
    ]) {
      expect(ok(name, 511)).toBe("511");
      bad(name, 512);
      expect(ok(name, 8191, "0\n", arm64k)).toBe("8191");
      bad(name, 8192, "0\n", arm64k);
      bad(name, 1, "0\n", { hpagePmdSize: null, pageSize: 4096 });
    }
  });

  it("choice files accept exactly the options the file lists", () => {
    expect(choiceOptions("always defer defer+madvise [madvise] never\n")).toEqual([
      "always",
      "defer",
      "defer+madvise",
      "madvise",
      "never",
    ]);
    expect(ok("enabled", "never", "always [madvise] never\n")).toBe("never");
    expect(ok("defrag", "defer+madvise\n", "always defer defer+madvise [madvise] never\n")).toBe(
      "defer+madvise",
    );
    bad("enabled", "[madvise]", "always [madvise] never\n");
    bad("enabled", "Always", "always [madvise] never\n");
    bad("shmem_enabled", "deny", "always inherit within_size advise [never]\n");
    expect(ok("hugepages-2048kB/enabled", "inherit", "always [inherit] madvise never\n")).toBe(
      "inherit",
    );
    bad("enabled", "never", null);
  });
});

describe("tunable writes to a fixture tree", () => {
  const roots: string[] = [];
  afterAll(async () => {
    for (const r of roots) await rm(r, { recursive: true, force: true });
  });

  it("writes, shows the value as the kernel would, serialises writes and records who, old and new", async () => {
    const root = await mkdtemp(join(tmpdir(), "mirrorplane-tunables-"));
    roots.push(root);
    await cp(join(import.meta.dirname, "../../test/fixtures/arm64-64k-partial"), root, {
      recursive: true,
    });
    await mkdir(join(root, "proc/self"), { recursive: true });
    await writeFile(
      join(root, "proc/self/smaps"),
      "7f00-7f01 r-xp 0 0 0 /x\nKernelPageSize:       64 kB\n",
    );
    const events: THostEvent[] = [];
    const writer = new TunableWriter(root, "n1", (e) => events.push(e));
    const actor = { name: "bob" };
    const thp = join(root, "sys/kernel/mm/transparent_hugepage");
    const [a, b] = await Promise.all([
      writer.set({ name: "khugepaged/max_ptes_none", value: 8000, actor }),
      writer.set({ name: "khugepaged/max_ptes_none", value: 100, actor }),
    ]);
    expect([a.old, a.new, b.old, b.new]).toEqual(["8191", "8000", "8000", "100"]);
    await expect(
      writer.set({ name: "khugepaged/max_ptes_none", value: 8192, actor }),
    ).rejects.toThrow("from 0 to 8191");
    await writer.set({ name: "enabled", value: "never", actor });
    expect(await readFile(join(thp, "enabled"), "utf8")).toBe("always madvise [never]\n");
    // Not on this (partial) host: refused, not created.
    await expect(writer.set({ name: "khugepaged/max_ptes_swap", value: 1, actor })).rejects.toThrow(
      "no such tunable",
    );
    expect(events.map((e) => [e.kind, e.data.outcome, e.data.old, e.data.new])).toEqual([
      ["tunable_change", "changed", "8191", "8000"],
      ["tunable_change", "changed", "8000", "100"],
      ["tunable_change", "refused", "100", null],
      ["tunable_change", "changed", "always", "never"],
      ["tunable_change", "refused", null, null],
    ]);
    expect(new Set(events.map((e) => e.key)).size).toBe(events.length);
  });
});
