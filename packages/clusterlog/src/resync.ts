import { type Bitmap, popcount32 } from "./bitmap.ts";
import type { ClusterState } from "./cluster-state.ts";
import { type LogGroup, NO_IO } from "./log-state.ts";
import type { ResyncOperation, ResyncOutcome } from "./operations.ts";

// Operator-started resync (issue 5, "Resync control"): an ordered operation makes a region
// range out of sync, so every replica agrees on which regions need recovery and the
// recovery cursor restarts at the range; the kernels then recover them through the
// ordinary GET_RESYNC_WORK / SET_REGION_SYNC path (spec §2.12, §2.13). A kernel only asks
// for resync work after a resume (its in_sync_hint, §2.17), which is the agent's and the
// operator's business (docs/KERNEL-BRIDGE.md), not the core's.
//
// Each group holds at most one operator resync. It counts the regions *it* made out of
// sync (they were in sync when it started), for reporting. Cancelling never declares a
// region in sync (see `cancel` below): it stops the sweep until the next resume.

export function applyResync(state: ClusterState, op: ResyncOperation): ResyncOutcome {
  const group = state.groups.get(op.uuid);
  if (!group || group.loading) return { ok: false, reason: "no-such-log" };
  if (op.action === "start") {
    if (group.resync) return { ok: false, reason: "busy" };
    const first = op.first ?? 0;
    const last = Math.min(op.last ?? group.regionCount - 1, group.regionCount - 1);
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || first > last) {
      return { ok: false, reason: "bad-range" };
    }
    // Word-level: made = sync ∧ range, then sync and clean lose the range (a region out
    // of sync is never clean, §3.6), written to disk at once (`issueOutOfSyncWrite`).
    const made = group.syncBits.clone();
    made.fillRange(0, first, false);
    made.fillRange(last + 1, group.regionCount, false);
    group.syncBits.fillRange(first, last + 1, false);
    const before = group.cleanBits.count;
    group.cleanBits.fillRange(first, last + 1, false);
    if (group.cleanBits.count !== before) group.touched = true;
    if (made.count > 0) issueOutOfSyncWrite(state, group);
    // The recovery cursor restarts at the range (GET_RESYNC_WORK scans from it), and the
    // sticky in_sync (P13) no longer holds on any member.
    group.syncSearch = Math.min(group.syncSearch, first);
    group.sweepHeld = false;
    for (const m of group.members) {
      const inst = state.memberInstance(group, m.node);
      if (inst) inst.inSync = false;
    }
    group.resync = {
      id: op.id,
      first,
      last,
      startedAt: state.position,
      paused: false,
      armed: op.armed ?? false,
      allowance: null,
      made,
      madeCount: made.count,
    };
    return { ok: true, regions: last - first + 1 };
  }
  const resync = group.resync;
  if (!resync || resync.id !== op.id) return { ok: false, reason: "no-such-resync" };
  if (op.action === "allow") {
    const n = op.regions;
    if (n !== null && (!Number.isInteger(n) || n < 0)) return { ok: false, reason: "bad-range" };
    resync.allowance = n;
    return { ok: true, regions: 0 };
  }
  if (op.action === "pause" || op.action === "unpause") {
    resync.paused = op.action === "pause";
    if (op.action === "unpause") resync.armed = false;
    return { ok: true, regions: 0 };
  }
  // cancel: the sweep stops; nothing is declared in sync. A kernel may have written a
  // region of the range to the primary leg only ("nosync", through an in_sync hint it
  // had before the start), so calling the untouched ones in sync again could hide legs
  // that differ. What is still out of sync is recovered when a write needs it (priority
  // list) and in full after the next resume.
  const outOfSync =
    resync.last - resync.first + 1 - countInSync(group.syncBits, resync.first, resync.last);
  group.resync = null;
  group.sweepHeld = true;
  return { ok: true, regions: outOfSync };
}

/**
 * Regions of `group` were just made out of sync without a mark (an operator resync start,
 * a failed node's marked regions, §4.5): write the log now, not at the next FLUSH. The
 * kernel writes a region IN_SYNC calls out of sync to the primary leg only and unmarked,
 * so the disk must call it not clean first; until this write is durable IN_SYNC answers
 * -EAGAIN for out-of-sync regions (`outOfSyncPending`, the kernel resends). Nothing to do
 * when the disk already holds the current bits (nothing changed and nothing in flight),
 * or for a core log.
 */
export function issueOutOfSyncWrite(state: ClusterState, group: LogGroup): void {
  if (group.loading || (!group.touched && group.lastWriteIo === NO_IO)) return;
  const server = state.serverInstance(group);
  if (!server || server.config.logType === "clustered-core") return;
  group.touched = false;
  state.issueWrite(group, "out-of-sync", []);
}

/** Whether this resync is finished: no region of its range is out of sync any more. */
export function resyncDone(group: LogGroup): boolean {
  const resync = group.resync;
  if (!resync) return false;
  const next = group.syncBits.findNextZero(resync.first);
  return next > resync.last;
}

/** Regions of [first, last] in sync (word at a time). */
export function countInSync(bits: Bitmap, first: number, last: number): number {
  let count = 0;
  for (let r = first; r <= last; ) {
    const w = r >>> 5;
    const lo = r & 31;
    const hi = Math.min(31, lo + (last - r));
    const mask = hi - lo === 31 ? 0xffff_ffff : (((1 << (hi - lo + 1)) - 1) << lo) >>> 0;
    count += popcount32((bits.words[w]! & mask) >>> 0);
    r += hi - lo + 1;
  }
  return count;
}

/** Something other than the resync spoke about `region`: it is no longer the resync's. */
export function forgetResyncRegion(group: LogGroup, region: number): void {
  group.resync?.made.clear(region);
}
