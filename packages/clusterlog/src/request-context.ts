import type { ClusterState } from "./cluster-state.ts";
import type { RequestHeader } from "./codec.ts";
import { EAGAIN, ENOENT } from "./errno.ts";
import type { LogGroup, LogInstance } from "./log-state.ts";
import type { NodeId } from "./operations.ts";

/** One kernel request as a handler sees it. */
export interface RequestContext {
  readonly node: NodeId;
  readonly header: RequestHeader;
  readonly data: Uint8Array;
}

/** The reply is sent later (after log I/O, or after a master resume finished loading). */
export const DEFERRED = Symbol("deferred");

export type Outcome = { readonly error: number; readonly payload?: Uint8Array } | typeof DEFERRED;

export type RequestHandler = (state: ClusterState, req: RequestContext) => Outcome;

export const SUCCESS: Outcome = { error: 0 };

export function failure(error: number): Outcome {
  return { error };
}

/**
 * The group a *clustered* request addresses: the official log with this UUID that the
 * originating node is a member of. cmirrord answers -ENOENT when the node has no cluster
 * group for the UUID (spec §2 preamble, §3.2). While a master resume is still loading the
 * disk, -EAGAIN makes the kernel resend (spec §1.4).
 */
export function resolveMember(
  state: ClusterState,
  req: RequestContext,
): { group: LogGroup; instance: LogInstance } | { error: number } {
  const group = state.groups.get(req.header.uuid);
  const instance = group ? state.memberInstance(group, req.node) : null;
  if (!group || !instance) return { error: -ENOENT };
  if (group.loading) return { error: -EAGAIN };
  return { group, instance };
}

/**
 * `resolveMember` when only the group is needed: the group, or the negative errno. No
 * object per request (PERF.md PB1: IS_CLEAN, MARK, CLEAR and FLUSH resolve through this).
 */
export function resolveGroup(state: ClusterState, req: RequestContext): LogGroup | number {
  const group = state.groups.get(req.header.uuid);
  if (!group || !state.memberInstance(group, req.node)) return -ENOENT;
  if (group.loading) return -EAGAIN;
  return group;
}

/** Regions are valid in [0, region_count): reject R ≥ rc everywhere, [REC] pitfall P21. */
export function regionInRange(group: { regionCount: number }, region: number): boolean {
  return Number.isInteger(region) && region >= 0 && region < group.regionCount;
}
