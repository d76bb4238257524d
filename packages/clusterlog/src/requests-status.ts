import type { ClusterState } from "./cluster-state.ts";
import { encodeAscii, encodeU64 } from "./codec.ts";
import { EINVAL } from "./errno.ts";
import { failure, type Outcome, type RequestContext, resolveMember } from "./request-context.ts";
import { statusInfo as formatStatusInfo, statusTable as formatStatusTable } from "./status.ts";

// GET_REGION_SIZE, STATUS_INFO, STATUS_TABLE (spec §2.6, §2.15, §2.16).

/** DM_ULOG_GET_REGION_SIZE (spec §2.6): local, official or pending; u64. */
export function getRegionSize(state: ClusterState, req: RequestContext): Outcome {
  const inst = state.findInstance(req.node, req.header.uuid, req.header.luid);
  if (!inst) return failure(-EINVAL);
  return { error: 0, payload: encodeU64(inst.config.regionSize) };
}

/**
 * DM_ULOG_STATUS_INFO (spec §2.15): answered by the server, with the server's device
 * health (lvm2 e5b9338ad, P15). Not in a group → -ENOENT (kernel shows COM_FAILURE, P35).
 */
export function statusInfo(state: ClusterState, req: RequestContext): Outcome {
  const member = resolveMember(state, req);
  if ("error" in member) return failure(member.error);
  const server = state.serverInstance(member.group) ?? member.instance;
  return {
    error: 0,
    payload: encodeAscii(formatStatusInfo(server.config, member.group.logDevFailed)),
  };
}

/** DM_ULOG_STATUS_TABLE (spec §2.16): local, official or pending. */
export function statusTable(state: ClusterState, req: RequestContext): Outcome {
  const inst = state.findInstance(req.node, req.header.uuid, req.header.luid);
  if (!inst) return failure(-EINVAL);
  return { error: 0, payload: encodeAscii(formatStatusTable(inst.config)) };
}
