import type { ClusterState } from "./cluster-state.ts";
import { decodeRegionList, decodeU64, encodeBool64 } from "./codec.ts";
import { EAGAIN, EINVAL } from "./errno.ts";
import { clearRegion as clearOne, markRegion as markOne, NO_IO } from "./log-state.ts";
import {
  DEFERRED,
  failure,
  type Outcome,
  type RequestContext,
  regionInRange,
  resolveMember,
  SUCCESS,
} from "./request-context.ts";

// IS_CLEAN, IN_SYNC, FLUSH, MARK_REGION, CLEAR_REGION (spec §2.7–§2.11).

/** DM_ULOG_IS_CLEAN (spec §2.7): clustered, 0 or 1 exactly (P12). */
export function isClean(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  const region = decodeU64(req.data);
  if (!regionInRange(member.group, region)) return failure(-EINVAL); // [REC] §2.7
  return { error: 0, payload: encodeBool64(member.group.cleanBits.test(region)) };
}

/**
 * DM_ULOG_IN_SYNC (spec §2.8): answered from the node's own replica; an official log only.
 * The sticky in_sync flag wins once the mirror reached full sync (lvm2 53670b18f, P13).
 */
export function inSync(state: ClusterState, req: RequestContext): Outcome {
  const inst = state.findInstance(req.node, req.header.uuid, req.header.luid);
  const group = inst?.official ? state.groups.get(inst.uuid) : undefined;
  if (!inst || !group) return failure(-EINVAL);
  const region = decodeU64(req.data);
  if (!regionInRange(group, region)) return failure(-EINVAL); // P21 (lvm2 cdcb75919)
  const value = inst.inSync || group.syncBits.test(region);
  // Made out of sync by an operation whose log write is still in flight: the disk may
  // still call the region clean, and "not in sync" lets the kernel write it to one leg
  // unmarked. The kernel resends on -EAGAIN (spec §1.4) until the write is durable.
  if (!value && state.outOfSyncPending(group.uuid)) return failure(-EAGAIN);
  return { error: 0, payload: encodeBool64(value) };
}

/** All regions of a MARK/CLEAR/FLUSH list, or null if any is out of range (P21 [REC]). */
function regionsInRange(group: { regionCount: number }, data: Uint8Array): number[] | null {
  const regions = decodeRegionList(data);
  return regions.every((r) => regionInRange(group, r)) ? regions : null;
}

/** DM_ULOG_MARK_REGION (spec §2.10): record (node, R) for every listed region. */
export function markRegion(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  const regions = regionsInRange(member.group, req.data);
  if (!regions) return failure(-EINVAL);
  for (const region of regions) markOne(member.group, req.node, region);
  return SUCCESS;
}

/**
 * DM_ULOG_CLEAR_REGION (spec §2.11). The dispatcher turns the answer into the immediate
 * bare ACK cmirrord sends (scenario 12), so a failure here is invisible to the kernel.
 */
export function clearRegion(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  const regions = regionsInRange(member.group, req.data);
  if (!regions) return failure(-EINVAL);
  for (const region of regions) clearOne(member.group, req.node, region);
  return SUCCESS;
}

/**
 * DM_ULOG_FLUSH (spec §2.9). With a payload (integrated flush, uapi v3) the regions are
 * marked first — cmirrord ignores them and loses the marks (P7). Then commit: every
 * replica resets `touched`; a disk log asks the server to write the whole log and the
 * reply waits until that write is durable. A FLUSH with nothing new still waits for a
 * write in flight, since that write may carry this node's marks (scenario 16 otherwise
 * performs no write).
 */
export function flush(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  const { group, instance } = member;
  const regions = regionsInRange(group, req.data);
  if (!regions) return failure(-EINVAL);
  for (const region of regions) markOne(group, req.node, region);

  const waiter = { node: req.node, header: req.header };
  if (!group.touched) {
    const inFlight =
      group.lastWriteIo === NO_IO ? undefined : state.pendingIo.get(group.lastWriteIo);
    if (!inFlight) return SUCCESS;
    inFlight.waiters.push(waiter);
    return DEFERRED;
  }
  group.touched = false;
  // The server's table decides whether there is a disk to write (it is the writer, §4.2).
  const server = state.serverInstance(group) ?? instance;
  if (server.config.logType === "clustered-core") return SUCCESS;
  state.issueWrite(group, "flush", [waiter]);
  return DEFERRED;
}
