// Guided replacement of a failed mirror leg (issue 13, complaint 10): which of the node's
// disks can take the leg, and the exact commands for the operator's stack. Pure.
//
// dm-raid1's table (KERNEL-SOURCES.md §3.3; dm-mirror.ts on the agent):
//   <start> <len> mirror <log type> <#log args> <log args…> <#legs> (<dev> <offset>)…
//   [<#features> <feature>…]
// A reload constructs a new mirror set whose default mirror (reads, the recovery source) is
// the table's first leg (dm-raid1.c DEFAULT_MIRROR). So the new, empty device must never be
// first: when the failed leg is the first, the current source leg takes its place and the
// new device the source's. The log arguments stay as they are: a userspace log keeps the
// cluster's region state across the reload (its uuid is unchanged), so the regions it calls
// in sync are not copied to the new leg by themselves — the whole mirror is resynced after.

export interface TCandidateDisk {
  name: string;
  majorMinor: string | null;
  kind: string;
  sizeBytes: number | null;
  model: string | null;
  serial: string | null;
  partitions: string[];
  holders: string[];
  legs: { mirror: string; index: number }[];
  smart: { status: string; reasons: string[] };
}

export interface TCandidate<D extends TCandidateDisk = TCandidateDisk> {
  disk: D;
  /** Why it cannot take the leg (null: it can). */
  excluded: string | null;
  /** What to check before using it (SMART warnings, partitions, unavailable SMART). */
  cautions: string[];
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toLocaleString("en-US", { maximumFractionDigits: 1 })} GiB`;
}

/**
 * Every disk of the node with whether it can take a leg of `sizeBytes`: eligible are whole
 * devices at least that large, not a leg of any mirror, not in use (no holders), SMART not
 * failing. Eligible first, then the excluded, each in inventory order.
 */
export function replacementCandidates<D extends TCandidateDisk>(
  disks: readonly D[],
  sizeBytes: number | null,
): TCandidate<D>[] {
  const judged = disks.map((disk): TCandidate<D> => {
    const cautions: string[] = [];
    let excluded: string | null = null;
    if (disk.kind === "dm" || disk.kind === "md")
      excluded = `a ${disk.kind === "dm" ? "device-mapper" : "md"} device: pick the disk it would be built on`;
    else if (disk.legs.length > 0)
      excluded = `already ${disk.legs.map((l) => `leg ${l.index} of ${l.mirror}`).join(", ")}`;
    else if (disk.holders.length > 0) excluded = `in use: ${disk.holders.join(", ")} built on it`;
    else if (disk.smart.status === "failing")
      excluded = `SMART FAILING: ${disk.smart.reasons.join("; ")}`;
    else if (disk.sizeBytes === null) excluded = "its size is not reported";
    else if (sizeBytes === null)
      excluded = "the leg's size is not reported, so no size can be checked";
    else if (disk.sizeBytes < sizeBytes)
      excluded = `too small: ${gib(disk.sizeBytes)}, the leg needs ${gib(sizeBytes)}`;
    if (disk.smart.status === "warning") cautions.push(`SMART: ${disk.smart.reasons.join("; ")}`);
    if (disk.smart.status === "unavailable")
      cautions.push(`SMART unavailable: ${disk.smart.reasons.join("; ") || "no reason given"}`);
    if (disk.smart.status === "pending") cautions.push("SMART not read yet");
    if (disk.partitions.length > 0)
      cautions.push(
        `has partitions (${disk.partitions.join(", ")}): check they hold nothing you need`,
      );
    return { disk, excluded, cautions };
  });
  return [
    ...judged.filter((c) => c.excluded === null),
    ...judged.filter((c) => c.excluded !== null),
  ];
}

export interface TMirrorTable {
  start: string;
  length: string;
  logType: string;
  logArgs: string[];
  legs: { device: string; offset: string }[];
  /** `<#features> <feature>…` as they were, or empty. */
  features: string[];
}

/** A mirror target line (`0 4194304 mirror userspace 4 …`); throws a sentence if it is not one. */
export function parseMirrorTarget(line: string): TMirrorTable {
  const f = line.trim().split(/\s+/);
  const isInt = (t: string | undefined) => t !== undefined && /^\d+$/.test(t);
  if (!isInt(f[0]) || !isInt(f[1]) || f[2] !== "mirror" || !f[3] || !isInt(f[4]))
    throw new Error("the agent's table line is not a dm-raid1 mirror target");
  const argc = Number(f[4]);
  const logArgs = f.slice(5, 5 + argc);
  const legCount = f[5 + argc];
  if (logArgs.length !== argc || !isInt(legCount) || Number(legCount) < 1)
    throw new Error("the mirror's table line is truncated (log arguments or leg count)");
  const legs: TMirrorTable["legs"] = [];
  let at = 6 + argc;
  for (let i = 0; i < Number(legCount); i++, at += 2) {
    if (!f[at] || !isInt(f[at + 1])) throw new Error("the mirror's table line is truncated (legs)");
    legs.push({ device: f[at]!, offset: f[at + 1]! });
  }
  const features = f.slice(at);
  if (features.length > 0 && (!isInt(features[0]) || features.length !== 1 + Number(features[0])))
    throw new Error("the mirror's table line has malformed features");
  return { start: f[0]!, length: f[1]!, logType: f[3]!, logArgs, legs, features };
}

export function formatMirrorTarget(t: TMirrorTable): string {
  return [
    t.start,
    t.length,
    "mirror",
    t.logType,
    String(t.logArgs.length),
    ...t.logArgs,
    String(t.legs.length),
    ...t.legs.flatMap((l) => [l.device, l.offset]),
    ...t.features,
  ].join(" ");
}

export interface TTableRewrite {
  table: string;
  /** Where the new device went, and where each old leg is now (by old index). */
  newIndex: number;
  moved: { from: number; to: number }[];
}

/**
 * The table with leg `failedIndex` replaced by `newDevice` (an `M:m`, at offset 0). If the
 * failed leg is the first, `sourceIndex` (a leg without errors) moves first and the new
 * device takes its place, so the reloaded mirror reads from and recovers from a leg that
 * holds the data. Throws a sentence when that is impossible.
 */
export function replaceLegInTable(
  line: string,
  failedIndex: number,
  newDevice: string,
  sourceIndex: number | null,
): TTableRewrite {
  const t = parseMirrorTarget(line);
  if (failedIndex < 0 || failedIndex >= t.legs.length)
    throw new Error(`the table has no leg ${failedIndex}`);
  if (t.legs.some((l) => l.device === newDevice))
    throw new Error(`${newDevice} is already a leg of this mirror`);
  const legs = [...t.legs];
  const fresh = { device: newDevice, offset: "0" };
  if (failedIndex !== 0) {
    legs[failedIndex] = fresh;
    return { table: formatMirrorTarget({ ...t, legs }), newIndex: failedIndex, moved: [] };
  }
  if (sourceIndex === null || sourceIndex === 0 || sourceIndex >= legs.length)
    throw new Error(
      "no other leg is without errors: the new device would be the first leg, which dm-raid1 reads from and copies from, and it holds no data",
    );
  legs[0] = t.legs[sourceIndex]!;
  legs[sourceIndex] = fresh;
  return {
    table: formatMirrorTarget({ ...t, legs }),
    newIndex: sourceIndex,
    moved: [{ from: sourceIndex, to: 0 }],
  };
}

/** One shell word: single-quoted unless it is plainly safe. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * dmsetup's three steps: the new table into the inactive slot, then the swap. The suspend
 * is `--noflush`, as LVM's repair does it: with `handle_errors` dm-raid1 holds the writes
 * that failed on the dead leg, and a plain suspend completes every held write with an I/O
 * error (`hold_bio` while suspending), where `--noflush` requeues them for the new table
 * (found in the kernel lab, `guest leg-replace`: without it the writer saw the errors).
 */
export function dmsetupCommands(name: string, table: string): string[] {
  const n = shellQuote(name);
  return [
    `dmsetup reload ${n} --table ${shellQuote(table)}`,
    `dmsetup suspend --noflush ${n}`,
    `dmsetup resume ${n}`,
  ];
}

/** LVM's dm name `vg-lv` (a `-` inside either name is doubled) → names; null if not one. */
export function lvmNames(dmName: string): { vg: string; lv: string } | null {
  const at = /(?<!-)-(?!-)/.exec(dmName);
  if (!at) return null;
  const vg = dmName.slice(0, at.index).replace(/--/g, "-");
  const lv = dmName.slice(at.index + 1).replace(/--/g, "-");
  return vg && lv ? { vg, lv } : null;
}

/** Whether LVM made this mirror: its dm uuid, or its legs' `_mimage_N` names. */
export function isLvmMirror(
  dmUuid: string | null | undefined,
  legLabels: readonly (string | null)[],
): boolean {
  if (dmUuid) return dmUuid.startsWith("LVM-");
  return legLabels.some((l) => l !== null && /_mimage_\d+$/.test(l));
}

/** The physical volume(s) under a leg: its non-dm devices, a partition rather than its disk. */
export function physicalVolumes(underlying: readonly string[]): string[] {
  const plain = underlying.filter((d) => !/^dm-\d+$/.test(d));
  return plain.filter((d) => !plain.some((o) => o !== d && o.startsWith(d)));
}

export function lvmCommands(input: {
  dmName: string;
  newDisk: string;
  oldPvs: readonly string[];
}): { vg: string; lv: string; repair: string[]; replace: string[] | null } | null {
  const names = lvmNames(input.dmName);
  if (!names) return null;
  const vgLv = `${shellQuote(names.vg)}/${shellQuote(names.lv)}`;
  const pv = `/dev/${input.newDisk}`;
  const prepare = [`pvcreate ${pv}`, `vgextend ${shellQuote(names.vg)} ${pv}`];
  return {
    ...names,
    repair: [...prepare, `lvconvert --repair ${vgLv} ${pv}`],
    replace:
      input.oldPvs.length === 1
        ? [...prepare, `lvconvert --replace /dev/${input.oldPvs[0]} ${vgLv} ${pv}`]
        : null,
  };
}

/** A leg as `resync.logs` reports it. */
export interface TWatchedLeg {
  device: string;
  majorMinor: string | null;
  underlying: string[];
  health: string;
}

/**
 * Whether the node's kernel now runs the mirror on the new disk: a leg that is the disk or
 * built on it (LVM may give the new image the old image's dm name, so the old device's
 * name says nothing), and whether that leg is alive (`A`).
 */
export function replacementState(
  legs: readonly TWatchedLeg[] | null,
  newDisk: { name: string; majorMinor: string | null },
): "waiting" | "loaded-with-errors" | "done" {
  if (!legs) return "waiting";
  const onNew = legs.find(
    (l) =>
      l.device === newDisk.name ||
      (newDisk.majorMinor !== null && l.majorMinor === newDisk.majorMinor) ||
      l.underlying.includes(newDisk.name),
  );
  if (!onNew) return "waiting";
  return onNew.health === "A" ? "done" : "loaded-with-errors";
}
