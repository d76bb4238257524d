import type { ClusterState } from "./cluster-state.ts";
import { decodeSetRegionSync, decodeU64, encodePair64, encodeU64 } from "./codec.ts";
import { EINVAL } from "./errno.ts";
import { heldByStaleHint, noteFullSync, setHintBound } from "./hint-guard.ts";
import { freeRecoverySlot, NO_REGION, requestRecovery } from "./log-state.ts";
import {
  failure,
  type Outcome,
  type RequestContext,
  regionInRange,
  resolveMember,
  SUCCESS,
} from "./request-context.ts";

// GET_RESYNC_WORK, SET_REGION_SYNC, GET_SYNC_COUNT, IS_REMOTE_RECOVERING (spec §2.12–§2.14,
// §2.17). All O(1) or amortised O(1) in the region count (PERF.md PB3).

/**
 * DM_ULOG_GET_RESYNC_WORK (spec §2.12). One region is recovered cluster-wide at a time;
 * the recoverer asking again gets the same region (P1, scenario 24). The sequential search
 * resumes from `syncSearch`, so a whole resync visits each bitmap word about once.
 */
export function getResyncWork(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  const { group } = member;
  const none = { error: 0, payload: encodePair64(0, 0) };
  if (group.syncSearch >= group.regionCount) return none;
  if (group.recoveringRegion !== NO_REGION) {
    return group.recoverer === req.node
      ? { error: 0, payload: encodePair64(1, group.recoveringRegion) }
      : none;
  }
  const assign = (region: number): Outcome => {
    group.recoveringRegion = region;
    group.recoverer = req.node;
    return { error: 0, payload: encodePair64(1, region) };
  };
  // [REC] (a deviation from cmirrord, which hands it out regardless, §3.5): a region
  // another node still has marked has writes in flight there that passed their
  // IS_REMOTE_RECOVERING check before the region went out of sync (an operator resync, a
  // failed peer, a failed leg). Copying it now could race those writes and leave the legs
  // different under a region later called clean. New writes to it are re-queued by their
  // kernels, so the marks drain and it is handed out then; until then: no work.
  // An operator resync still being armed (the kernels are being suspended and resumed so
  // none writes the range with a stale hint, resync.ts) hands out nothing at all.
  if (group.resync?.armed) return none;
  // The hint guard (hint-guard.ts): nor a region another member's kernel may write to the
  // primary leg only, because its in_sync hint is above it. The cursor moves back to the
  // region, so the hints those kernels get once re-armed (sync_search − 1) stay below it.
  const busyElsewhere = (region: number) => {
    if (group.markers.get(region)?.some((node) => node !== req.node)) return true;
    if (!heldByStaleHint(state, group, req.node, region)) return false;
    group.syncSearch = Math.min(group.syncSearch, region);
    return true;
  };
  // Priority list first (LIFO), skipping regions that got in sync meanwhile.
  while (group.recoveryRequests.length > 0) {
    const region = group.recoveryRequests[group.recoveryRequests.length - 1]!;
    if (!group.syncBits.test(region) && busyElsewhere(region)) return none;
    group.recoveryRequests.pop();
    group.queuedRecovery.delete(region);
    if (!group.syncBits.test(region)) {
      // The hint guard: while it is copied, no IS_REMOTE_RECOVERING answer may carry a
      // hint above it (sync_search − 1), or its asker would write it without asking again.
      group.syncSearch = Math.min(group.syncSearch, region + 1);
      return assign(region);
    }
  }
  // A paused operator resync stops the sequential sweep only: regions a write is waiting
  // on (the priority list above) still recover, so a throttle never blocks writers. So
  // does a cancelled one, until the next resume.
  if (group.resync?.paused || group.sweepHeld) return none;
  // A throttled resync: its window's allowance spent, the sweep waits for the next one.
  const resync = group.resync;
  if (resync && resync.allowance !== null && resync.allowance <= 0) return none;
  const region = group.syncBits.findNextZero(group.syncSearch);
  if (region >= group.regionCount) {
    // lvm2 34cbedcea (P14): rc + 1 makes the hint (sync_search − 1) reach rc.
    group.syncSearch = group.regionCount + 1;
    return none;
  }
  if (busyElsewhere(region)) return none; // the cursor stays: asked again, handed out later
  group.syncSearch = region + 1;
  if (resync && resync.allowance !== null) resync.allowance--;
  return assign(region);
}

/** DM_ULOG_SET_REGION_SYNC (spec §2.13). Idempotent: a resend counts once (P1, scenario 24). */
export function setRegionSync(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  const { group } = member;
  const { region, inSync } = decodeSetRegionSync(req.data);
  if (!regionInRange(group, region)) return failure(-EINVAL); // [REC] §2.13
  // [REC] pitfall P28: free the recovery slot only when this is its region; cmirrord frees
  // it for any region (e.g. another node's write-failure report) and can then hand the
  // region being recovered to a second node.
  if (region === group.recoveringRegion) {
    const invalidated = group.recoveryInvalidated;
    freeRecoverySlot(group);
    if (invalidated && inSync) {
      // [REC] (deliberately unlike cmirrord, see invalidateRecovery in log-state.ts): a
      // write was marked on this region while it was copied, so the copy proves nothing.
      // The reply is the usual success (the kernel has nothing to redo), but the region
      // stays out of sync, goes first on the priority list and is handed out again once
      // no other node has it marked; the cursor moves back so the kernel's hint
      // (sync_search − 1) stays below it (P29). A failed recovery (0) is not retried
      // early (§2.12), as before.
      requestRecovery(group, region);
      group.syncSearch = Math.min(group.syncSearch, region);
      return SUCCESS;
    }
  }
  group.syncBits.assign(region, inSync);
  group.resync?.made.clear(region); // recovered or failed: no longer the resync's to undo
  // An operator resync whose whole range is in sync is over: the log can take another.
  if (
    inSync &&
    group.resync &&
    group.syncBits.findNextZero(group.resync.first) > group.resync.last
  ) {
    group.resync = null;
  }
  if (group.syncBits.count === group.regionCount) {
    // Sticky in_sync on every member's log (each cmirrord replica sets its own, §2.13).
    for (const m of group.members) {
      const inst = state.memberInstance(group, m.node);
      if (inst) inst.inSync = true;
    }
    noteFullSync(state, group);
  }
  return SUCCESS;
}

/**
 * DM_ULOG_GET_SYNC_COUNT (spec §2.14): local, official or pending. The count is kept
 * exact and covers only [0, rc), so cmirrord's "repair" and its padding-bit inflation
 * (P31) cannot happen.
 */
export function getSyncCount(state: ClusterState, req: RequestContext): Outcome {
  const inst = state.findInstance(req.node, req.header.uuid, req.header.luid);
  if (!inst) return failure(-EINVAL);
  const group = inst.official ? state.groups.get(inst.uuid) : undefined;
  return { error: 0, payload: encodeU64(group ? group.syncBits.count : inst.pendingSyncCount) };
}

/**
 * DM_ULOG_IS_REMOTE_RECOVERING (spec §2.17): any out-of-sync region counts as recovering,
 * and a write blocked on it puts it on the priority list. The hint is cmirrord's
 * sync_search − 1 (scenario 7).
 *
 * [REC] pitfall P29: cmirrord answers {0, rc} while the server is presuspended, which
 * stops the asking node's kernel from requesting resync work until its own next resume.
 * We answer from the real state instead; `cmirrordQuirks` restores the old answer.
 */
export function isRemoteRecovering(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  const { group, instance } = member;
  const region = decodeU64(req.data);
  if (!regionInRange(group, region)) return failure(-EINVAL);
  if (state.options.cmirrordQuirks && state.serverInstance(group)?.recoveryHalted) {
    setHintBound(state, instance, group.regionCount);
    return { error: 0, payload: encodePair64(0, group.regionCount) };
  }
  const recovering = !group.syncBits.test(region);
  const hint = group.syncSearch > 0 ? group.syncSearch - 1 : 0;
  // The kernel stores this hint in place of its last one (hint guard, hint-guard.ts) —
  // unless the log is fully in sync now: then its next GET_SYNC_COUNT (answered locally,
  // unordered) may read rc and move the hint there.
  const full = group.syncBits.count === group.regionCount;
  setHintBound(state, instance, full ? group.regionCount : hint);
  if (recovering) requestRecovery(group, region);
  return { error: 0, payload: encodePair64(recovering ? 1 : 0, hint) };
}
