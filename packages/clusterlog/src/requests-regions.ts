import type { ClusterState } from "./cluster-state.ts";
import { decodeU64, encodeBool64 } from "./codec.ts";
import { EAGAIN, EINVAL } from "./errno.ts";
import { clearRegion as clearOne, markRegion as markOne, NO_IO } from "./log-state.ts";
import {
  DEFERRED,
  failure,
  type Outcome,
  type RequestContext,
  regionInRange,
  resolveGroup,
  SUCCESS,
} from "./request-context.ts";

// IS_CLEAN, IN_SYNC, FLUSH, MARK_REGION, CLEAR_REGION (spec §2.7–§2.11).

/** DM_ULOG_IS_CLEAN (spec §2.7): clustered, 0 or 1 exactly (P12). */
export function isClean(state: ClusterState, req: RequestContext): Outcome {
  const group = resolveGroup(state, req);
  if (typeof group === "number") return failure(group);
  const region = decodeU64(req.data);
  if (!regionInRange(group, region)) return failure(-EINVAL); // [REC] §2.7
  return bool64(state, group.cleanBits.test(region));
}

/**
 * The 0/1 answer of IS_CLEAN and IN_SYNC. While a reply sink takes the replies (it copies
 * a payload at once and never changes it, `ReplySink`), one of two shared outcomes: no
 * object and no array per answer (PERF.md PB1). Otherwise a fresh payload the caller may
 * keep.
 */
function bool64(state: ClusterState, value: boolean): Outcome {
  if (state.sink) return value ? ONE : ZERO;
  return { error: 0, payload: encodeBool64(value) };
}

const ONE: Outcome = { error: 0, payload: encodeBool64(true) };
const ZERO: Outcome = { error: 0, payload: encodeBool64(false) };

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
  return bool64(state, value);
}

/**
 * Whether every region of a MARK/CLEAR/FLUSH list (`u64[]`, its size a multiple of 8) is
 * in range, P21 [REC]: all or nothing. Read from the bytes, no array per request (PB1);
 * the handlers then read each region again with `decodeU64`.
 */
function regionsInRange(group: { regionCount: number }, data: Uint8Array): boolean {
  for (let off = 0; off + 8 <= data.length; off += 8) {
    if (!regionInRange(group, decodeU64(data, off))) return false;
  }
  return true;
}

/** DM_ULOG_MARK_REGION (spec §2.10): record (node, R) for every listed region. */
export function markRegion(state: ClusterState, req: RequestContext): Outcome {
  const group = resolveGroup(state, req);
  if (typeof group === "number") return failure(group);
  const data = req.data;
  if (!regionsInRange(group, data)) return failure(-EINVAL);
  for (let off = 0; off + 8 <= data.length; off += 8)
    markOne(group, req.node, decodeU64(data, off));
  return SUCCESS;
}

/**
 * DM_ULOG_CLEAR_REGION (spec §2.11). The dispatcher turns the answer into the immediate
 * bare ACK cmirrord sends (scenario 12), so a failure here is invisible to the kernel.
 */
export function clearRegion(state: ClusterState, req: RequestContext): Outcome {
  const group = resolveGroup(state, req);
  if (typeof group === "number") return failure(group);
  const data = req.data;
  if (!regionsInRange(group, data)) return failure(-EINVAL);
  for (let off = 0; off + 8 <= data.length; off += 8)
    clearOne(group, req.node, decodeU64(data, off));
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
  const group = resolveGroup(state, req);
  if (typeof group === "number") return failure(group);
  const data = req.data;
  if (!regionsInRange(group, data)) return failure(-EINVAL);
  for (let off = 0; off + 8 <= data.length; off += 8)
    markOne(group, req.node, decodeU64(data, off));

  if (!group.touched) {
    const inFlight =
      group.lastWriteIo === NO_IO ? undefined : state.pendingIo.get(group.lastWriteIo);
    if (!inFlight) return SUCCESS;
    inFlight.waiters.push({ node: req.node, header: req.header });
    return DEFERRED;
  }
  group.touched = false;
  // The server's table decides whether there is a disk to write (it is the writer, §4.2).
  const server = state.serverInstance(group) ?? state.memberInstance(group, req.node)!;
  if (server.config.logType === "clustered-core") return SUCCESS;
  state.issueWrite(group, "flush", [{ node: req.node, header: req.header }]);
  return DEFERRED;
}
