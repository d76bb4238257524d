import { Bitmap } from "./bitmap.ts";
import type { RequestHeader } from "./codec.ts";
import type { LogConfig } from "./ctr-args.ts";
import type { NodeId } from "./operations.ts";

// Per-log state (cmirrord `struct log_c`, spec §3.1), split in two:
// * a LogInstance per (node, uuid, luid): what one node's kernel constructed — config,
//   pending/official, and the node-local flags (in_sync, recovery_halted);
// * a LogGroup per uuid while at least one node has it resumed: the replicated state every
//   member agrees on. Unlike cmirrord's checkpoint it includes the mark list, the resync
//   cursor and the priority list (spec §4.3, [REC] pitfalls P26, P27).

/** recovering_region NONE (2^64−1 in cmirrord). */
export const NO_REGION = -1;
/** recoverer "nobody" (0xFFFFFFFF in cmirrord). */
export const NO_NODE = 0xffff_ffff;
export const NO_IO = -1;

/** An operator resync in progress on a group (resync.ts applies the operations). */
export interface ResyncState {
  /** Chosen by the caller (the agent), unique per log; echoed in progress and events. */
  readonly id: string;
  /** Inclusive region range. */
  readonly first: number;
  readonly last: number;
  /** Position in the stream at which it started (replicas agree on it). */
  readonly startedAt: number;
  /** The sequential sweep hands out no work; regions writes wait on still recover. */
  paused: boolean;
  /** Nothing is handed out at all until unpaused: the start is still being armed. */
  armed: boolean;
  /**
   * Throttle (an `allow` operation per window, from the agent that owns it): how many
   * more regions the sequential sweep may hand out until the next `allow`; null: no limit.
   * Each sweep hand-out spends one, so a window never hands out more than it was allowed
   * on any number of nodes; the priority list (regions writes wait on) is never limited.
   */
  allowance: number | null;
  /** Regions this resync made out of sync and that nothing else has touched since. */
  readonly made: Bitmap;
  /** How many regions it made out of sync at start. */
  readonly madeCount: number;
}

export interface LogInstance {
  readonly node: NodeId;
  readonly uuid: string;
  readonly luid: bigint;
  readonly config: LogConfig;
  /** Resumed and a member of the group ("official"); false = pending. */
  official: boolean;
  /** Set by PRESUSPEND, cleared by a (non-extra) RESUME (spec §2.3). */
  recoveryHalted: boolean;
  /** Sticky "reached full sync since this node's last resume" (spec §2.8, P13). */
  inSync: boolean;
  /** This node wrote the log and failed; kept across suspend until a new CTR (spec §3.1). */
  logDevFailed: boolean;
  /** GET_SYNC_COUNT while pending: rc for nosync at CTR, the last group count after a suspend. */
  pendingSyncCount: number;
  /**
   * The highest in_sync hint this node's kernel may hold (spec §2.17): regions below it
   * are written without asking IS_REMOTE_RECOVERING — and, once out of sync, to the
   * primary leg only. Set by the hint in each IS_REMOTE_RECOVERING answer, rc while the
   * group is fully in sync (a GET_SYNC_COUNT answer of rc moves the kernel's hint to rc,
   * and that read is answered locally, outside the total order), 0 by a resume after
   * a suspend, rc (unknown) after the -ESRCH re-CTR, which does not reset the kernel's
   * hint. `hint-guard` in requests-resync.ts.
   */
  hintBound: number;
}

/** A kernel request whose reply waits for I/O (or for a master resume to finish). */
export interface PendingReply {
  readonly node: NodeId;
  readonly header: RequestHeader;
}

export interface LogGroup {
  readonly uuid: string;
  readonly regionCount: number;
  /** Members as (node, luid), sorted by node; the first is the server (spec §4.1). */
  members: { node: NodeId; luid: bigint }[];
  /** A master resume is waiting for its disk read/write; requests get -EAGAIN. */
  loading: boolean;
  readonly cleanBits: Bitmap;
  readonly syncBits: Bitmap;
  /** region → nodes that have it marked (sorted). The mark list of spec §3.6. */
  readonly markers: Map<number, NodeId[]>;
  /**
   * node → regions it has marked; a node with none has no entry. A view of `markers`,
   * built on first read and kept up to date from then on (`markIndex`); the server's own
   * paths never read it, so MARK/CLEAR do not pay for a reverse index.
   */
  readonly markedBy: Map<NodeId, Set<number>>;
  /** The `markedBy` index once something has read it; null until then. */
  markIndex: Map<NodeId, Set<number>> | null;
  recoveringRegion: number;
  recoverer: NodeId;
  /**
   * The recovery in the slot can no longer be trusted: a write to its region was marked,
   * or a node holding a mark on it departed, while it ran. Its SET_REGION_SYNC(R, 1) then
   * leaves R out of sync and queues it again ([REC], see `invalidateRecovery`).
   */
  recoveryInvalidated: boolean;
  /** Cursor of the sequential resync search (spec §2.12). */
  syncSearch: number;
  /** Priority list filled by IS_REMOTE_RECOVERING, popped LIFO (spec §2.12 step 3). */
  readonly recoveryRequests: number[];
  readonly queuedRecovery: Set<number>;
  touched: boolean;
  /** The current server's log-device health (STATUS_INFO `A`/`D`). */
  logDevFailed: boolean;
  /** Newest log write not yet completed; a FLUSH with nothing new waits for it. */
  lastWriteIo: number;
  /** Joiners' RESUMEs that arrived while a master resume was loading. */
  readonly waitingResumes: PendingReply[];
  /** The operator resync of this log, if one is running (resync.ts). */
  resync: ResyncState | null;
  /** A cancelled resync stopped the sequential sweep until a member's next resume. */
  sweepHeld: boolean;
  /**
   * Members whose kernel's in_sync hint (`LogInstance.hintBound`) held back resync work:
   * their agents suspend and resume that node's mirror (the kernel then resets its hint
   * to 0). Leaves the set when the node's hint changes or the node leaves the group.
   */
  readonly staleHints: Set<NodeId>;
}

export function newLogGroup(uuid: string, regionCount: number): LogGroup {
  return {
    uuid,
    regionCount,
    members: [],
    loading: false,
    cleanBits: new Bitmap(regionCount),
    syncBits: new Bitmap(regionCount),
    markers: new Map(),
    get markedBy() {
      return markIndexOf(this);
    },
    markIndex: null,
    recoveringRegion: NO_REGION,
    recoverer: NO_NODE,
    recoveryInvalidated: false,
    syncSearch: 0,
    recoveryRequests: [],
    queuedRecovery: new Set(),
    touched: false,
    logDevFailed: false,
    lastWriteIo: NO_IO,
    waitingResumes: [],
    resync: null,
    sweepHeld: false,
    staleHints: new Set(),
  };
}

/** `group.markedBy`: build the reverse index of `markers` the first time it is asked for. */
function markIndexOf(group: LogGroup): Map<NodeId, Set<number>> {
  let index = group.markIndex;
  if (index === null) {
    index = new Map();
    for (const [region, nodes] of group.markers) {
      for (const node of nodes) {
        let regions = index.get(node);
        if (regions === undefined) {
          regions = new Set();
          index.set(node, regions);
        }
        regions.add(region);
      }
    }
    group.markIndex = index;
  }
  return index;
}

export function serverOf(group: LogGroup): NodeId | null {
  return group.members[0]?.node ?? null;
}

export function isMember(group: LogGroup, node: NodeId): boolean {
  return group.members.some((m) => m.node === node);
}

export function addMember(group: LogGroup, node: NodeId, luid: bigint): void {
  group.members.push({ node, luid });
  group.members.sort((a, b) => a.node - b.node);
}

export function removeMember(group: LogGroup, node: NodeId): void {
  group.members = group.members.filter((m) => m.node !== node);
  group.staleHints.delete(node);
}

/**
 * MARK one region for `node` (spec §2.10): idempotent per (node, region) (P1); the first
 * marker dirties the region's clean bit.
 */
export function markRegion(group: LogGroup, node: NodeId, region: number): void {
  const nodes = group.markers.get(region);
  if (nodes === undefined) {
    // The common case: the region's first marker — no search, no sort, and the list made
    // with its one entry. The `else` branch's comment on recovery applies here too.
    if (region === group.recoveringRegion) invalidateRecovery(group);
    group.markers.set(region, [node]);
    // touched = "a bit changed since the last FLUSH" (spec §3.1): a mark of an already
    // dirty region needs no log write (scenario 16).
    if (group.cleanBits.clear(region)) group.touched = true;
  } else {
    // A second marker (rare): as before, kept sorted.
    if (nodes.includes(node)) return;
    // A new mark while its region is being recovered: a write that passed its
    // IS_REMOTE_RECOVERING check before the region went out of sync. A repeated mark (P1)
    // is the write the hand-out already knew of (§2.12 hands out regions only its
    // recoverer has marked), so only a new entry counts.
    if (region === group.recoveringRegion) invalidateRecovery(group);
    nodes.push(node);
    nodes.sort((a, b) => a - b);
  }
  const index = group.markIndex;
  if (index === null) return;
  let regions = index.get(node);
  if (regions === undefined) {
    regions = new Set();
    index.set(node, regions);
  }
  regions.add(region);
}

/** Remove `region` from `node`'s entry in `markIndex` (if built), dropping it once empty. */
function unindexMark(group: LogGroup, node: NodeId, region: number): void {
  const regions = group.markIndex?.get(node);
  if (regions === undefined) return;
  regions.delete(region);
  if (regions.size === 0) group.markIndex!.delete(node);
}

/** Drop `node`'s mark on `region` if it has one. Returns whether anyone still has it marked. */
function dropMark(group: LogGroup, node: NodeId, region: number): boolean {
  const nodes = group.markers.get(region);
  if (nodes === undefined) return false;
  if (nodes.length === 1) {
    // The common case: a single marker, no search and no splice.
    if (nodes[0] !== node) return true;
    unindexMark(group, node, region);
    group.markers.delete(region);
    return false;
  }
  const at = nodes.indexOf(node);
  if (at >= 0) {
    nodes.splice(at, 1);
    unindexMark(group, node, region);
  }
  if (nodes.length > 0) return true;
  group.markers.delete(region);
  return false;
}

/**
 * CLEAR one region for `node` (spec §2.11): the region becomes clean only when no other
 * node still has it marked (P10) and it is in sync (P9: recovery clears after
 * SET_REGION_SYNC). A clear without a mark is normal and silent (P11).
 */
export function clearRegion(group: LogGroup, node: NodeId, region: number): void {
  const stillMarked = dropMark(group, node, region);
  if (!stillMarked && group.syncBits.test(region)) {
    if (group.cleanBits.set(region)) group.touched = true;
  }
}

/**
 * Distrust the recovery in the slot. [REC] — deliberately unlike cmirrord, which records a
 * MARK of the region being recovered like any other (spec §3.5) and lets the recoverer's
 * SET_REGION_SYNC(R, 1) set R in sync whatever happened meanwhile (§2.13). The kernel's
 * protection (§3.5: IS_REMOTE_RECOVERING re-queues writes to out-of-sync regions) only
 * covers writes that ask *after* R went out of sync; a write that asked before (R in
 * sync), was marked after R went out of sync (a failed peer, §4.5; a failed leg; an
 * operator resync) and was handed out, may land on one leg after the recoverer copied R,
 * or on one leg only if its node then dies. Calling R in sync would leave the legs
 * different under an in-sync region. Data integrity first — when in doubt, mark out of
 * sync and resync: the slot stays with the recoverer (its kernel finishes and re-asks
 * idempotently, P1), but its SET_REGION_SYNC(R, 1) leaves R out of sync and queues it
 * again; GET_RESYNC_WORK hands it out once no other node has it marked. The recoverer's
 * own writes are quiesced by its kernel before the copy (dm-region-hash), but counting
 * them too costs one more copy of one region in a rare race, so we do not rely on that.
 */
export function invalidateRecovery(group: LogGroup): void {
  const region = group.recoveringRegion;
  if (region === NO_REGION) return;
  group.recoveryInvalidated = true;
  // It was handed out out of sync; if anything set it in sync meanwhile, that is suspect too.
  group.syncBits.clear(region);
  group.resync?.made.clear(region);
}

/** Free the recovery slot (its region, if invalidated, is the caller's to requeue). */
export function freeRecoverySlot(group: LogGroup): void {
  group.recoveringRegion = NO_REGION;
  group.recoverer = NO_NODE;
  group.recoveryInvalidated = false;
}

/** Queue `region` for priority recovery unless it is already queued or being recovered. */
export function requestRecovery(group: LogGroup, region: number): void {
  if (region === group.recoveringRegion || group.queuedRecovery.has(region)) return;
  group.recoveryRequests.push(region);
  group.queuedRecovery.add(region);
}

/**
 * A member leaves `group` — by POSTSUSPEND/DTR (`clean`) or because its agent left or was
 * declared failed. cmirrord does nothing here (spec §4.5, pitfalls P24, P25); we apply the
 * [REC] of spec §4.5 at this point of the total order so every replica agrees:
 *
 * * a failed node's marks are dropped and those regions made out of sync (it may have
 *   half-written them), in_sync is reset on the survivors, and the resync cursor is moved
 *   back so the regions are resynced online rather than at the next activation;
 * * a node that suspended cleanly has no write in flight (the kernel waits for I/O before
 *   POSTSUSPEND), so its marks are simply released as if cleared — otherwise they would
 *   keep those regions dirty for good, because the next table's region hash never knew
 *   them (deviation from the letter of §4.5, see README);
 * * if it held the recovery slot, the slot is released and the region queued first;
 * * if it had the region another node is recovering marked, that recovery is invalidated
 *   (`invalidateRecovery`): the write behind the mark may have landed during the copy, and
 *   after a failure perhaps on one leg only. A clean suspend counts too (its write is
 *   complete, but may have been during the copy).
 *
 * Returns the regions made out of sync, ascending.
 */
export function releaseMember(group: LogGroup, node: NodeId, clean: boolean): number[] {
  removeMember(group, node);
  // Its marks, from the mark list itself (a scan of the marked regions, once per departure).
  const marked: number[] = [];
  for (const [region, nodes] of group.markers) if (nodes.includes(node)) marked.push(region);
  marked.sort((a, b) => a - b);
  if (
    group.recoverer !== node &&
    group.markers.get(group.recoveringRegion)?.includes(node) === true
  ) {
    invalidateRecovery(group);
  }
  const outOfSync: number[] = [];
  for (const region of marked) {
    if (clean) {
      clearRegion(group, node, region);
    } else {
      dropMark(group, node, region);
      if (group.syncBits.clear(region)) outOfSync.push(region);
      // Suspect now: a cancelled operator resync must not call it in sync again.
      group.resync?.made.clear(region);
    }
  }
  if (group.recoverer === node && group.recoveringRegion !== NO_REGION) {
    const region = group.recoveringRegion;
    freeRecoverySlot(group);
    if (!group.syncBits.test(region)) {
      requestRecovery(group, region);
      group.syncSearch = Math.min(group.syncSearch, region);
    }
  }
  if (outOfSync.length > 0) {
    // Resync must start again at or below the first suspect region (keeps the kernel's
    // hint, sync_search − 1, below it too — pitfall P29).
    group.syncSearch = Math.min(group.syncSearch, outOfSync[0]!);
  }
  return outOfSync;
}
