import type { ClusterState } from "./cluster-state.ts";
import { instanceKey } from "./cluster-state.ts";
import { encodeAscii } from "./codec.ts";
import type { LogConfig } from "./ctr-args.ts";
import { parseCtr } from "./ctr-args.ts";
import { initialCleanBits } from "./disk-format.ts";
import { EEXIST, EINVAL, ENOSPC } from "./errno.ts";
import { joinedWithHint, noteFullSync, setHintBound } from "./hint-guard.ts";
import {
  addMember,
  freeRecoverySlot,
  isMember,
  type LogGroup,
  type LogInstance,
  newLogGroup,
  type PendingReply,
  releaseMember,
} from "./log-state.ts";
import type { NodeId } from "./operations.ts";
import {
  DEFERRED,
  failure,
  type Outcome,
  type RequestContext,
  resolveMember,
  SUCCESS,
} from "./request-context.ts";

// CTR, DTR, PRESUSPEND, POSTSUSPEND, RESUME (spec §2.1–§2.5, lifecycle §3.2).

/**
 * Why a new log of `config` may not be constructed for `node` under the limits (issue 15),
 * as errno and message; null when it may. Read-only: the server explains a refused CTR
 * with it.
 */
export function ctrLimitRefusal(
  state: ClusterState,
  node: NodeId,
  config: LogConfig,
): { readonly errno: number; readonly message: string } | null {
  const { maxRegions, maxLogs } = state.options;
  if (config.regionCount > maxRegions) {
    return {
      errno: -EINVAL,
      message: `${config.regionCount} regions is more than the limit of ${maxRegions} per log`,
    };
  }
  let logs = 0;
  for (const inst of state.instances.values()) if (inst.node === node) logs++;
  if (logs >= maxLogs) {
    return { errno: -ENOSPC, message: `node ${node} already holds the limit of ${maxLogs} logs` };
  }
  return null;
}

/** DM_ULOG_CTR (spec §2.1). Local: nothing reaches the cluster until RESUME. */
export function ctr(state: ClusterState, req: RequestContext): Outcome {
  const quirks = state.options.cmirrordQuirks;
  const parsed = parseCtr(req.data, { cmirrordQuirks: quirks });
  if (!parsed.ok) return failure(parsed.errno);
  const { config, reCtrForm } = parsed.value;
  const key = instanceKey(req.node, req.header.uuid, req.header.luid);
  const existing = state.instances.get(key);
  if (existing) {
    // cmirrord: "Log already exists" → -EINVAL (P5). [REC] pitfall P4(a): the kernel's
    // re-CTR after -ESRCH repeats the same arguments — accepting it as success breaks the
    // endless -ENOSPC/-EINVAL loop.
    if (quirks || existing.config.args !== config.args) return failure(-EINVAL);
  } else {
    const refused = ctrLimitRefusal(state, req.node, config);
    if (refused) return failure(refused.errno);
    state.instances.set(key, {
      node: req.node,
      uuid: req.header.uuid,
      luid: req.header.luid,
      config,
      official: false,
      recoveryHalted: false,
      inSync: false,
      logDevFailed: false,
      pendingSyncCount: config.sync === "nosync" ? config.regionCount : 0,
      // A table load starts with a zeroed hint; the -ESRCH re-CTR keeps whatever the
      // kernel had, which we cannot know (hint-guard.ts).
      hintBound: reCtrForm ? config.regionCount : 0,
    });
  }
  if (existing && reCtrForm) setHintBound(state, existing, existing.config.regionCount);
  // Version ≥ 2 kernels register the log device named in the reply. [REC] pitfall P4(b):
  // the re-CTR (payload ending in NUL) has no reply buffer, so a name there is -ENOSPC.
  const sendDevice = req.header.version > 1 && config.logDevice !== null && (quirks || !reCtrForm);
  return sendDevice ? { error: 0, payload: encodeAscii(config.logDevice!, true) } : SUCCESS;
}

/** DM_ULOG_DTR (spec §2.2). Official ("DTR before SUS") leaves the group first. */
export function dtr(state: ClusterState, req: RequestContext): Outcome {
  const inst = state.findInstance(req.node, req.header.uuid, req.header.luid);
  if (!inst) return failure(-EINVAL);
  if (inst.official) leaveGroup(state, inst, false);
  state.instances.delete(instanceKey(inst.node, inst.uuid, inst.luid));
  const retained = state.retained.get(inst.uuid);
  if (retained?.node === inst.node && retained.luid === inst.luid) state.retained.delete(inst.uuid);
  return SUCCESS;
}

/** DM_ULOG_PRESUSPEND (spec §2.3): official log only; halts recovery hints. */
export function presuspend(state: ClusterState, req: RequestContext): Outcome {
  const inst = state.findInstance(req.node, req.header.uuid, req.header.luid);
  if (!inst?.official) return failure(-EINVAL);
  inst.recoveryHalted = true;
  return SUCCESS;
}

/**
 * DM_ULOG_POSTSUSPEND (spec §2.4): the node leaves the log's group and its instance goes
 * back to pending with its counts retained. The ordered stream makes the leave
 * "confirmed" at this very point, so the reply is immediate.
 */
export function postsuspend(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  leaveGroup(state, member.instance, true);
  return SUCCESS;
}

/**
 * A clean departure from the group (POSTSUSPEND, DTR before suspend). The last member of a
 * core log leaving by suspend leaves its bits retained (`ClusterState.retained`).
 */
export function leaveGroup(state: ClusterState, inst: LogInstance, suspend: boolean): void {
  const group = state.groups.get(inst.uuid);
  inst.official = false;
  if (!group) return;
  inst.pendingSyncCount = group.syncBits.count;
  if (state.serverInstance(group) === inst && group.logDevFailed) inst.logDevFailed = true;
  releaseMember(group, inst.node, true);
  if (group.members.length > 0) syncServerHealth(state, group);
  else if (
    suspend &&
    inst.config.logType === "clustered-core" &&
    !group.loading &&
    !state.options.cmirrordQuirks
  ) {
    // Clean and in sync: the kernel only takes a region out of sync while it is marked, but
    // an out-of-sync region must never come back in sync without a copy, whatever led here.
    const cleanBits = group.cleanBits.clone();
    for (let r = group.syncBits.findNextZero(0); r < group.regionCount; ) {
      cleanBits.clear(r);
      r = group.syncBits.findNextZero(r + 1);
    }
    state.retained.set(group.uuid, {
      node: inst.node,
      luid: inst.luid,
      cleanBits,
      resync: group.resync,
    });
  }
  state.dissolveIfEmpty(group);
}

/** STATUS_INFO reports the *server's* device health (spec §2.15, P15). */
export function syncServerHealth(state: ClusterState, group: LogGroup): void {
  group.logDevFailed = state.serverInstance(group)?.logDevFailed ?? false;
}

/**
 * DM_ULOG_RESUME (spec §2.5). The first member does a "master resume" (reads the disk);
 * a joiner takes the group's replicated state — which every replica already holds, so
 * there is no checkpoint to wait for (spec §4.3).
 */
export function resume(state: ClusterState, req: RequestContext): Outcome {
  const inst = state.findInstance(req.node, req.header.uuid, req.header.luid);
  if (!inst) return failure(-EINVAL);
  // in_sync is reset at the very start of every RESUME, even the extra one (§2.5).
  inst.inSync = false;
  // The kernel zeroes its in_sync hint in userspace_resume, i.e. after a suspend; the
  // RESUME that follows an -ESRCH re-CTR is sent without it and leaves the hint as is.
  if (inst.recoveryHalted) setHintBound(state, inst, 0);
  // resume_override == 1000: an extra resume without suspend is a no-op — and, like
  // cmirrord, leaves a preceding PRESUSPEND's halt in place (scenario 19 quirk).
  if (inst.official) return SUCCESS;
  const group = state.groups.get(inst.uuid);
  if (group && isMember(group, inst.node)) return failure(-EEXIST); // another luid holds it
  if (group) {
    if (group.loading) {
      group.waitingResumes.push({ node: req.node, header: req.header });
      return DEFERRED;
    }
    return joinGroup(state, group, inst);
  }
  return masterResume(state, inst, { node: req.node, header: req.header });
}

function joinGroup(state: ClusterState, group: LogGroup, inst: LogInstance): Outcome {
  // cmirrord's pull_state refuses a checkpoint of another size (spec §4.3).
  if (inst.config.regionCount !== group.regionCount) return failure(-EINVAL);
  addMember(group, inst.node, inst.luid);
  inst.official = true;
  inst.recoveryHalted = false;
  group.sweepHeld = false; // a resume: the kernels ask for resync work again (resync.ts)
  disarmOnResume(group);
  syncServerHealth(state, group);
  noteFullSync(state, group);
  joinedWithHint(group, inst);
  return SUCCESS;
}

function masterResume(state: ClusterState, inst: LogInstance, waiter: PendingReply): Outcome {
  const group = newLogGroup(inst.uuid, inst.config.regionCount);
  state.groups.set(inst.uuid, group);
  addMember(group, inst.node, inst.luid);
  inst.official = true;
  inst.recoveryHalted = false;
  group.logDevFailed = inst.logDevFailed;
  if (inst.config.logType === "clustered-core") {
    // The bits this very table suspended with, as the kernel's core log keeps them; `sync`
    // and `nosync` say how a new table starts, and this is no new table.
    const retained = state.retained.get(inst.uuid);
    state.retained.delete(inst.uuid);
    const sameSize = retained !== undefined && retained.cleanBits.size === inst.config.regionCount;
    if (sameSize && retained.node === inst.node && retained.luid === inst.luid) {
      loadBits(group, retained.cleanBits);
    } else {
      // Another table's suspend left the cluster's bits: the last member to suspend was
      // another node (the members suspended together, e.g. each agent re-arming its own
      // kernel), or this node's table was replaced. Its `sync`/`nosync` says how a new
      // table starts, but never calls in sync what the cluster had out of sync: with
      // `nosync` a concurrent suspend of every member once called an operator resync's
      // whole range in sync without a copy (found by the live-stream web-agent test once
      // idle kernels were woken for resync work).
      const cleanBits = initialCleanBits(inst.config, null);
      if (sameSize) {
        const kept = retained.cleanBits;
        for (let r = kept.findNextZero(0); r < kept.size; r = kept.findNextZero(r + 1)) {
          cleanBits.clear(r);
        }
      }
      loadBits(group, cleanBits);
    }
    if (sameSize) group.resync = retained.resync;
    disarmOnResume(group);
    noteFullSync(state, group);
    return SUCCESS;
  }
  group.loading = true;
  // [REC] P32: with sync/nosync the disk bits are ignored, so there is nothing to read;
  // a device that already failed is treated as empty (spec §2.5).
  if (inst.config.sync !== "default" || inst.logDevFailed) {
    loadBits(group, initialCleanBits(inst.config, null));
    noteFullSync(state, group);
    state.issueWrite(group, "resume", [waiter]);
  } else {
    state.issueRead(group, inst.node, [waiter]);
  }
  return DEFERRED;
}

/**
 * An operator resync being armed (resync.ts) is armed once a member's kernel resumed after
 * its start: that kernel's hint is 0, and the hint guard keeps every region another
 * member's stale hint covers from being handed out. Found on the real kernel (kernel lab):
 * dm-raid1 asks GET_RESYNC_WORK right after the resume and, answered "none" while still
 * armed, never asks again on an idle mirror — the resync then waited forever for a write.
 */
function disarmOnResume(group: LogGroup): void {
  if (group.resync?.armed) group.resync.armed = false;
}

/** clean_bits → sync_bits, fresh resync cursor and recovery slot (spec §2.5 tail). */
function loadBits(group: LogGroup, cleanBits: LogGroup["cleanBits"]): void {
  group.cleanBits.copyFrom(cleanBits);
  group.syncBits.copyFrom(cleanBits);
  group.syncSearch = 0;
  freeRecoverySlot(group);
  group.touched = false;
}

/** The master resume's disk read completed (error → treated as an empty log, §2.5). */
export function masterResumeRead(
  state: ClusterState,
  group: LogGroup,
  image: Uint8Array | null,
  waiters: PendingReply[],
): void {
  const inst = state.serverInstance(group);
  if (!inst) return;
  loadBits(group, initialCleanBits(inst.config, image));
  noteFullSync(state, group);
  // Write back at once: header nr_regions := rc and the adjusted bits (spec §5). A read
  // error alone is overwritten by the write's result.
  state.issueWrite(group, "resume", waiters);
}

/** The master resume's write completed: answer it, then let queued joiners in. */
export function masterResumeDone(
  state: ClusterState,
  group: LogGroup,
  error: number,
  waiters: PendingReply[],
): void {
  group.loading = false;
  for (const w of waiters) state.reply(w.node, w.header, error);
  const joiners = group.waitingResumes.splice(0);
  for (const j of joiners) {
    const inst = state.findInstance(j.node, j.header.uuid, j.header.luid);
    const outcome = inst ? joinGroup(state, group, inst) : failure(-EINVAL);
    if (outcome !== DEFERRED) state.reply(j.node, j.header, outcome.error, outcome.payload);
  }
}
