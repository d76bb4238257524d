import { createHash } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import type { BusSnapshot } from "./bus.ts";

// A clean restart's handover (issue 11): on SIGTERM the connector server leaves netlink
// group 7, answers everything it had received, and writes its exact final state beside
// the host's connector lock; the next server to take the lock starts from it, so the
// kernel's re-constructed logs (its -ESRCH re-CTR and RESUME, spec §1.5) find their state
// and nothing is resynced. Without it a `clustered-core` log starts empty: the whole
// mirror resyncs after every upgrade.
//
// Safe only while nothing else answered the kernel in between, which is what the lock
// gives: the handover lives next to it (on /run, so a reboot drops it), and whoever takes
// the lock next consumes it — used or not — before it serves. It is written only when
// every kernel request was answered and no log I/O was pending, data first and then the
// small description naming the data's digest, each renamed into place after an fsync.

export const HANDOFF_VERSION = 1;

export interface Handoff {
  readonly nodeId: number;
  readonly snapshot: BusSnapshot;
  readonly writtenAt: number;
  readonly pid: number;
}

interface HandoffMeta {
  readonly version: number;
  readonly nodeId: number;
  readonly seq: number;
  readonly length: number;
  readonly sha256: string;
  readonly bootId: string | null;
  readonly writtenAt: number;
  readonly pid: number;
}

export function handoffPaths(lockPath: string): { meta: string; data: string } {
  return { meta: `${lockPath}.handoff.json`, data: `${lockPath}.handoff.snapshot` };
}

async function bootId(): Promise<string | null> {
  try {
    return (await readFile("/proc/sys/kernel/random/boot_id", "utf8")).trim();
  } catch {
    return null;
  }
}

async function writeDurably(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp`;
  const file = await open(tmp, "w", 0o600);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}

export async function writeHandoff(
  lockPath: string,
  handoff: { nodeId: number; snapshot: BusSnapshot; now: number },
): Promise<void> {
  const paths = handoffPaths(lockPath);
  const { bytes, seq } = handoff.snapshot;
  await writeDurably(paths.data, bytes);
  const meta: HandoffMeta = {
    version: HANDOFF_VERSION,
    nodeId: handoff.nodeId,
    seq,
    length: bytes.length,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    bootId: await bootId(),
    writtenAt: handoff.now,
    pid: process.pid,
  };
  await writeDurably(paths.meta, `${JSON.stringify(meta)}\n`);
}

export type TakenHandoff =
  | { readonly ok: true; readonly handoff: Handoff }
  | { readonly ok: false; readonly reason: string | null };

/**
 * Consume the handover beside `lockPath` (call it holding the lock, before serving). It is
 * removed whatever happens next: it applies to the next server only. `reason` is null
 * when there was none, else why it was not usable.
 */
export async function takeHandoff(
  lockPath: string,
  expect: { nodeId: number; now: number; maxAgeMs: number },
): Promise<TakenHandoff> {
  const paths = handoffPaths(lockPath);
  let metaText: string;
  try {
    metaText = await readFile(paths.meta, "utf8");
  } catch {
    await unlink(paths.data).catch(() => {});
    return { ok: false, reason: null };
  }
  await unlink(paths.meta).catch(() => {});
  let bytes: Uint8Array;
  try {
    bytes = await readFile(paths.data);
  } catch {
    return { ok: false, reason: "its snapshot is missing" };
  } finally {
    await unlink(paths.data).catch(() => {});
  }
  let meta: HandoffMeta;
  try {
    meta = JSON.parse(metaText) as HandoffMeta;
  } catch {
    return { ok: false, reason: "its description is not JSON" };
  }
  if (meta.version !== HANDOFF_VERSION) return { ok: false, reason: `version ${meta.version}` };
  if (meta.nodeId !== expect.nodeId) {
    return { ok: false, reason: `it is node ${meta.nodeId}'s, this is node ${expect.nodeId}` };
  }
  const current = await bootId();
  if (meta.bootId !== null && current !== null && meta.bootId !== current) {
    return { ok: false, reason: "it was written before the last boot" };
  }
  const age = expect.now - meta.writtenAt;
  if (!(age >= 0 && age <= expect.maxAgeMs)) {
    return { ok: false, reason: `it is ${Math.round(age / 1000)} s old` };
  }
  const digest = createHash("sha256").update(bytes).digest("hex");
  if (bytes.length !== meta.length || digest !== meta.sha256) {
    return { ok: false, reason: "its snapshot does not match its digest" };
  }
  return {
    ok: true,
    handoff: {
      nodeId: meta.nodeId,
      snapshot: { seq: meta.seq, bytes },
      writtenAt: meta.writtenAt,
      pid: meta.pid,
    },
  };
}
