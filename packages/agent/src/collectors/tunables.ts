import { randomUUID } from "node:crypto";
import { readFile, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { TTunableChange, TTunableWrite } from "@mirrorplane/contracts";
import type { THostEvent } from "../events/event.ts";

/**
 * Writing khugepaged/THP tunables with exactly the kernel's validation (KERNEL-SOURCES.md
 * §4.1–4.2, mm/khugepaged.c and mm/huge_memory.c store handlers), so a value the kernel
 * would refuse is refused here first, with a message that says why. Which files may be
 * written at all, and the API's input, are the contract's (@mirrorplane/contracts).
 */
export class TunableError extends Error {
  override name = "TunableError";
}

const uintMax = 0xffff_ffffn; // kstrtouint
const ulongMax = 0xffff_ffff_ffff_ffffn; // kstrtoul on 64-bit

/**
 * lib/kstrtox.c with base 10: an optional leading `+`, decimal digits, one optional
 * trailing newline, nothing else; -ERANGE past `max`. Returns the value or an error text.
 */
export function kstrtoulBase10(text: string, max: bigint): bigint | string {
  let s = text.endsWith("\n") ? text.slice(0, -1) : text;
  if (s.startsWith("+")) s = s.slice(1);
  if (!/^\d+$/.test(s)) return "not a decimal unsigned integer (EINVAL)";
  const value = BigInt(s);
  if (value > max) return `larger than ${max} (ERANGE)`;
  return value;
}

/** The options a `[bracketed]` choice file offers, as the kernel prints them (§4.2). */
export function choiceOptions(text: string): string[] {
  return text
    .trim()
    .split(/\s+/)
    .map((w) => w.replace(/^\[(.*)\]$/, "$1"))
    .filter((w) => w.length > 0);
}

export interface HostLimits {
  hpagePmdSize: number | null;
  pageSize: number | null;
}

/**
 * Validates `value` for tunable `name` exactly as the kernel's store handler would, given
 * the file's current content (choice files list their options) and the host's sizes.
 * Returns the string to write, or throws TunableError.
 */
export function validateTunable(
  name: string,
  value: string | number,
  current: string | null,
  limits: HostLimits,
): string {
  const text = typeof value === "number" ? (Number.isInteger(value) ? String(value) : "x") : value;
  const leaf = name.split("/").pop()!;
  const fail = (why: string): never => {
    throw new TunableError(`${name}: ${JSON.stringify(text)} refused: ${why}`);
  };
  if (
    leaf === "enabled" ||
    leaf === "shmem_enabled" ||
    (leaf === "defrag" && !name.startsWith("khugepaged/"))
  ) {
    if (current === null) fail("the file does not exist on this host");
    const options = choiceOptions(current!);
    // sysfs_streq: the word itself, optionally followed by one newline.
    const word = text.endsWith("\n") ? text.slice(0, -1) : text;
    if (!options.includes(word)) fail(`must be one of: ${options.join(", ")} (EINVAL)`);
    return word;
  }
  const number = (max: bigint) => {
    const v = kstrtoulBase10(text, max);
    if (typeof v === "string") fail(v);
    return v as bigint;
  };
  switch (leaf) {
    case "pages_to_scan": {
      const v = number(uintMax);
      if (v === 0n) fail("must be at least 1: khugepaged refuses 0 (EINVAL)");
      return String(v);
    }
    case "scan_sleep_millisecs":
    case "alloc_sleep_millisecs":
      return String(number(uintMax));
    case "defrag":
    case "use_zero_page": {
      const v = number(ulongMax);
      if (v > 1n) fail("must be 0 or 1 (EINVAL)");
      return String(v);
    }
    case "max_ptes_none":
    case "max_ptes_swap":
    case "max_ptes_shared": {
      const v = number(ulongMax);
      if (!limits.hpagePmdSize || !limits.pageSize)
        fail("cannot determine this host's hpage_pmd_size and page size, so not its limit");
      // HPAGE_PMD_NR − 1: 511 with 4 KiB pages and 2 MiB PMDs, 8191 on 64 KiB-page arm64.
      const limit = BigInt(limits.hpagePmdSize! / limits.pageSize!) - 1n;
      if (v > limit)
        fail(`must be from 0 to ${limit} (hpage_pmd_size / page size − 1 on this host) (EINVAL)`);
      return String(v);
    }
  }
  return fail("not a writable tunable");
}

const sysfsMagic = 0x62656572;
const thpDir = "sys/kernel/mm/transparent_hugepage";

async function readOrNull(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return null;
  }
}

/** Page size of the host under `root`: KernelPageSize of any mapping in /proc/self/smaps. */
export async function hostPageSize(root: string): Promise<number | null> {
  const smaps = await readOrNull(join(root, "proc/self/smaps"));
  const m = smaps === null ? null : /^KernelPageSize:\s+(\d+) kB/m.exec(smaps);
  return m ? Number(m[1]) * 1024 : null;
}

/**
 * Applies tunable writes under `root`, one at a time (so each change's old value is the
 * one it replaced), and describes each as an audited event.
 */
export class TunableWriter {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly root: string,
    private readonly nodeId: string,
    private readonly record: (event: THostEvent) => void,
  ) {}

  set(input: TTunableWrite): Promise<TTunableChange> {
    const run = this.chain.then(() => this.apply(input));
    this.chain = run.catch(() => {});
    return run;
  }

  private async apply(input: TTunableWrite): Promise<TTunableChange> {
    const path = join(this.root, thpDir, input.name);
    const current = await readOrNull(path);
    const old = current === null ? null : displayValue(current);
    let value: string;
    try {
      if (current === null) throw new TunableError(`${input.name}: no such tunable on this host`);
      const [hpage, pageSize] = await Promise.all([
        readOrNull(join(this.root, thpDir, "hpage_pmd_size")),
        hostPageSize(this.root),
      ]);
      const hpagePmdSize = hpage !== null && /^\d+\s*$/.test(hpage) ? Number(hpage) : null;
      value = validateTunable(input.name, input.value, current, { hpagePmdSize, pageSize });
      await writeTunable(path, value, current);
    } catch (error) {
      const message =
        error instanceof TunableError
          ? error.message
          : `${input.name}: write failed: ${(error as Error).message}`;
      this.record(this.event(input, old, null, "refused", message));
      throw error instanceof TunableError ? error : new TunableError(message);
    }
    const now = await readOrNull(path);
    const change: TTunableChange = {
      name: input.name,
      old,
      new: now === null ? value : displayValue(now),
      changedAt: new Date(),
    };
    this.record(this.event(input, old, change.new, "changed", null));
    return change;
  }

  private event(
    input: TTunableWrite,
    old: string | null,
    now: string | null,
    outcome: "changed" | "refused",
    error: string | null,
  ): THostEvent {
    const who = input.actor.name;
    return {
      key: `${this.nodeId}:tunable:${randomUUID()}`,
      kind: "tunable_change",
      severity: outcome === "changed" ? "notice" : "info",
      source: "api",
      occurredAt: Date.now(),
      device: null,
      message:
        outcome === "changed"
          ? `${who} changed ${input.name}: ${old ?? "?"} → ${now}`
          : `${who} tried to set ${input.name} to ${JSON.stringify(String(input.value))}: ${error}`,
      count: 1,
      simulated: false,
      data: {
        what: "tunable_write",
        outcome,
        tunable: input.name,
        who: input.actor,
        old,
        new: now,
        requested: String(input.value),
        reason: input.reason ?? null,
        error,
      },
    };
  }
}

/** `always [madvise] never` → `madvise`; a number file → its number. */
function displayValue(text: string): string {
  const selected = /\[([^\]]+)\]/.exec(text);
  return selected ? selected[1]! : text.trim();
}

/**
 * On sysfs the kernel's store handler does the work. Anywhere else (a fixture tree in
 * tests) the file is rewritten the way the kernel would then show it: a choice file with
 * the new option in brackets, a number file with the number.
 */
async function writeTunable(path: string, value: string, current: string): Promise<void> {
  const onSysfs = await statfs(path).then(
    (s) => s.type === sysfsMagic,
    () => false,
  );
  if (onSysfs) {
    await writeFile(path, value);
    return;
  }
  if (/\[[^\]]+\]/.test(current)) {
    const shown = choiceOptions(current)
      .map((o) => (o === value ? `[${o}]` : o))
      .join(" ");
    await writeFile(path, `${shown}\n`);
  } else await writeFile(path, `${value}\n`);
}
