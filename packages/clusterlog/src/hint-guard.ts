import type { ClusterState } from "./cluster-state.ts";
import { invalidateRecovery, type LogGroup, type LogInstance, NO_REGION } from "./log-state.ts";
import type { NodeId } from "./operations.ts";

// The hint guard ([REC], beyond cmirrord; docs/CLUSTERLOG-SERVER.md "hint guard").
//
// A kernel answers IS_REMOTE_RECOVERING itself for every region below its in_sync hint
// (spec §2.17), then asks IN_SYNC; a region that went out of sync since it got the hint
// (a failed peer's marks, §4.5; an operator resync; a recovery invalidated by a write) is
// then written to the *primary leg only* and unmarked. If another node copies that region
// meanwhile, the copy can read the primary before the write lands and the region is
// called in sync with legs that differ. cmirrord has the same window.
//
// So a region is handed out as resync work only when no *other* member's kernel can hold
// a hint above it (the recoverer's own writes wait on its region hash, which marks the
// region RECOVERING). Whose hint held work back is recorded in `LogGroup.staleHints`; that
// node's agent suspends and resumes its mirror, the kernel zeroes its hint, and the
// region is handed out at the next GET_RESYNC_WORK. Safe first: a hint we cannot know is
// taken as rc.

/** A change of what `inst`'s kernel may hold as its hint. */
export function setHintBound(state: ClusterState, inst: LogInstance, bound: number): void {
  inst.hintBound = bound;
  state.groups.get(inst.uuid)?.staleHints.delete(inst.node);
}

/**
 * The group may be fully in sync now: every member's kernel may read a sync count of rc
 * (answered locally) and move its hint to rc.
 */
export function noteFullSync(state: ClusterState, group: LogGroup): void {
  if (group.syncBits.count !== group.regionCount) return;
  for (const m of group.members) {
    const inst = state.memberInstance(group, m.node);
    if (inst) inst.hintBound = group.regionCount;
  }
}

/**
 * `inst` just joined the group. A kernel coming back after its agent restarted keeps its
 * hint (the -ESRCH re-CTR) and may write the region being copied to the primary leg only,
 * with writes queued while it had no agent: the copy proves nothing then, and the region
 * is recovered again once the hint is re-armed (`invalidateRecovery`).
 */
export function joinedWithHint(group: LogGroup, inst: LogInstance): void {
  const region = group.recoveringRegion;
  if (region !== NO_REGION && group.recoverer !== inst.node && inst.hintBound > region) {
    invalidateRecovery(group);
  }
}

/**
 * Whether a member other than `recoverer` may write `region` without asking first. Each
 * such member is recorded in `staleHints` so its agent re-arms its kernel.
 */
export function heldByStaleHint(
  state: ClusterState,
  group: LogGroup,
  recoverer: NodeId,
  region: number,
): boolean {
  let held = false;
  for (const m of group.members) {
    if (m.node === recoverer) continue;
    const inst = state.memberInstance(group, m.node);
    if (inst && inst.hintBound > region) {
      group.staleHints.add(m.node);
      held = true;
    }
  }
  return held;
}

/**
 * Whether `node`'s agent should suspend and resume its mirror `uuid` now: its kernel's
 * hint is holding back resync work for the others (`staleHints`) — or there is work
 * and no kernel will ask for it. A kernel whose hint reached rc never sends
 * GET_RESYNC_WORK (spec §2.17); when that holds for every member (a failed peer's regions
 * went out of sync after a full sync), the lowest member is re-armed first, so one
 * member always stays in the group, and the others follow through `staleHints` once it
 * asks. Not while a cancelled resync holds the sweep (a resume would undo the cancel), an
 * operator resync is paused or being armed, or a region is being recovered.
 */
export function needsRearm(state: Readonly<ClusterState>, node: NodeId, uuid: string): boolean {
  const group = state.groups.get(uuid);
  if (group === undefined) return false;
  if (!group.members.some((m) => m.node === node)) return false;
  if (group.staleHints.has(node)) return true;
  if (group.members[0]?.node !== node || group.loading) return false;
  if (group.sweepHeld || group.resync?.paused || group.resync?.armed) return false;
  if (group.recoveringRegion !== NO_REGION) return false;
  for (const m of group.members) {
    const inst = state.memberInstance(group, m.node);
    if (!inst || inst.hintBound < group.regionCount) return false; // that kernel asks
  }
  return (
    group.recoveryRequests.length > 0 ||
    group.syncBits.findNextZero(group.syncSearch) < group.regionCount
  );
}
