import { Bitmap, BitmapCopy, COPY_PIECE_BYTES } from "./bitmap.ts";
import { ByteReader, ByteReaderError, ByteWriter } from "./byte-io.ts";
import {
  type ClusterLogOptions,
  ClusterState,
  instanceKey,
  type PendingIo,
} from "./cluster-state.ts";
import { encodeAscii, type RequestHeader } from "./codec.ts";
import { parseCtr } from "./ctr-args.ts";
import {
  type LogGroup,
  NO_IO,
  NO_REGION,
  newLogGroup,
  type PendingReply,
  type ResyncState,
} from "./log-state.ts";
import { fail, ok, type Result } from "./result.ts";

// Snapshot = everything replicas must agree on, in one canonical little-endian encoding
// (pitfall P19): a joiner starts from it and replays the stream after `position`.
// Unlike cmirrord's checkpoint (sync_bits, clean_bits, recovering_region, recoverer) it
// carries the mark list, the resync cursor and the priority list ([REC] pitfalls P26,
// P27), whether the recovery in the slot was invalidated (§3.5 [REC]), the pending I/O and deferred replies, and the stream position (P17 [REC]:
// a joiner can tell a snapshot of an older session from the one it asked for).
// Maps are written in sorted key order, so equal states give equal bytes.

const SNAPSHOT_MAGIC = 0x4c43_504d; // "MPCL"
const SNAPSHOT_VERSION = 5;
/** A pending I/O's purpose byte (2 was added within version 3; an older reader sees "flush"). */
const PURPOSES = ["resume", "flush", "out-of-sync"] as const;
/**
 * Older versions still read, so a running cluster can upgrade: 1 had no operator resync,
 * 2 no `recoveryInvalidated` (read as false).
 */
const SNAPSHOT_VERSION_NO_RESYNC = 1;
const SNAPSHOT_VERSION_NO_INVALIDATION = 2;
/** 3 had no hint guard: every kernel's hint is taken as rc, the safe side. */
const SNAPSHOT_VERSION_NO_HINTS = 3;
/** 4 retained nothing across a suspend (read as nothing retained: a full resync, safe). */
const SNAPSHOT_VERSION_NO_RETAINED = 4;
const NONE_U64 = (1n << 64n) - 1n;

export type SnapshotError = "bad-snapshot";

function writeHeader(w: ByteWriter, h: RequestHeader): void {
  w.u64(h.luid).string(h.uuid).u32(h.version).u32(h.seq).u32(h.requestType);
}

function readHeader(r: ByteReader): RequestHeader {
  return {
    luid: r.u64Big(),
    uuid: r.string(),
    version: r.u32(),
    seq: r.u32(),
    requestType: r.u32(),
  };
}

function writeWaiters(w: ByteWriter, waiters: readonly PendingReply[]): void {
  w.u32(waiters.length);
  for (const p of waiters) {
    w.u32(p.node);
    writeHeader(w, p.header);
  }
}

function readWaiters(r: ByteReader): PendingReply[] {
  const n = r.u32();
  const out: PendingReply[] = [];
  for (let i = 0; i < n; i++) out.push({ node: r.u32(), header: readHeader(r) });
  return out;
}

export function encodeSnapshot(state: ClusterState): Uint8Array {
  return beginSnapshot(state).finish();
}

/** A snapshot's bitmaps, in the order their bytes appear (`SnapshotWriter.bitmap`). */
class SnapshotWriter extends ByteWriter {
  readonly bitmaps: Bitmap[] = [];

  /** Like `ByteWriter.bitmap`, but the bytes are copied later (`SnapshotJob`). */
  override bitmap(v: Bitmap): this {
    const n = Math.ceil(v.size / 8);
    this.u32(n).gap(n);
    this.bitmaps.push(v);
    return this;
  }
}

/**
 * A snapshot being made (issue 15): everything but the bitmaps is encoded when it is
 * started (into a small buffer of its own), and the rest — placing those encoded bytes
 * and copying the bitmaps', 4 MiB for one 2^24-region log, 16 MiB for 1,024 logs of
 * 65,536 regions — is done by `step`, a bounded amount at a time, or for a bitmap by the
 * first change to a piece not copied yet (copy-on-write, `BitmapCopy`). So it can be
 * spread over many event-loop turns while operations go on being applied, and its bytes
 * are exactly those `encodeSnapshot` gives at the position it was started at.
 */
export class SnapshotJob {
  /** The stream position (operations applied) the snapshot is of. */
  readonly position: number;
  readonly #bytes: Uint8Array;
  readonly #written: Uint8Array;
  /** Written segments and bitmap copies, in the order of their bytes. */
  readonly #work: (Segment | BitmapCopy)[];
  #next = 0;
  #abandoned = false;

  constructor(
    bytes: Uint8Array,
    written: Uint8Array,
    work: (Segment | BitmapCopy)[],
    position: number,
  ) {
    this.#bytes = bytes;
    this.#written = written;
    this.#work = work;
    this.position = position;
  }

  /** Size of the snapshot in bytes. */
  get size(): number {
    return this.#bytes.length;
  }

  get done(): boolean {
    return this.#next === this.#work.length && !this.#abandoned;
  }

  /**
   * Place about `maxBytes` more (at least one piece, if any is left; a segment counts as
   * at least a page: placing it can fault one in). Returns whether the snapshot is complete.
   */
  step(maxBytes: number): boolean {
    if (this.#abandoned) throw new Error("snapshot abandoned");
    let placed = 0;
    while (this.#next < this.#work.length && (placed === 0 || placed < maxBytes)) {
      const item = this.#work[this.#next]!;
      if (item instanceof BitmapCopy) {
        if (!item.done) placed += item.step(maxBytes - placed);
        if (item.done) this.#next++;
      } else {
        this.#bytes.set(this.#written.subarray(item.from, item.to), item.at);
        placed += Math.max(PAGE_BYTES, item.to - item.from);
        this.#next++;
      }
    }
    return this.#next === this.#work.length;
  }

  /** Complete it now and return its bytes. */
  finish(): Uint8Array {
    this.step(Number.POSITIVE_INFINITY);
    return this.#bytes;
  }

  /** The bytes of a complete snapshot. */
  get bytes(): Uint8Array {
    if (!this.done) throw new Error("snapshot not complete");
    return this.#bytes;
  }

  /** Give it up: the bitmaps are no longer watched and the bytes are never complete. */
  abandon(): void {
    this.#abandoned = true;
    for (const item of this.#work) if (item instanceof BitmapCopy) item.abandon();
  }
}

/** Encoded bytes `written[from, to)` go to `at` in the snapshot. */
interface Segment {
  readonly from: number;
  readonly to: number;
  readonly at: number;
}

const PAGE_BYTES = 4096;

/** How a `SnapshotJob` is made. */
export interface SnapshotJobOptions {
  /** Bytes of a bitmap copied at a time (`COPY_PIECE_BYTES`; small in tests). */
  readonly pieceBytes?: number;
  /**
   * Makes the snapshot's buffer (default: a zeroed Uint8Array). The caller may pass one
   * that does not zero it (Node's `Buffer.allocUnsafeSlow`): every byte is written before
   * the job is complete, and zeroing 16 MiB took 2-17 ms of the first turn (issue 15).
   */
  readonly allocate?: (size: number) => Uint8Array;
}

/** Start a snapshot of `state` as it is now (`SnapshotJob`). */
export function beginSnapshot(state: ClusterState, options: SnapshotJobOptions = {}): SnapshotJob {
  const w = new SnapshotWriter(64 * 1024);
  w.u32(SNAPSHOT_MAGIC).u32(SNAPSHOT_VERSION).bool(state.options.cmirrordQuirks);
  w.u64(state.position).u64(state.nextIoId);

  const nodes = [...state.nodes].sort((a, b) => a - b);
  w.u32(nodes.length);
  for (const n of nodes) w.u32(n);

  const keys = [...state.instances.keys()].sort();
  w.u32(keys.length);
  for (const key of keys) {
    const inst = state.instances.get(key)!;
    w.u32(inst.node).string(inst.uuid).u64(inst.luid).string(inst.config.args);
    w.bool(inst.official).bool(inst.recoveryHalted).bool(inst.inSync).bool(inst.logDevFailed);
    w.u64(inst.pendingSyncCount).u64(inst.hintBound);
  }

  const uuids = state.sortedGroupIds();
  w.u32(uuids.length);
  for (const uuid of uuids) writeGroup(w, state.groups.get(uuid)!);

  const ios = [...state.pendingIo.values()].sort((a, b) => a.ioId - b.ioId);
  w.u32(ios.length);
  for (const io of ios) {
    w.u64(io.ioId)
      .u8(io.kind === "read" ? 0 : 1)
      .string(io.uuid)
      .u32(io.node);
    w.u8(io.purpose === "resume" ? 0 : io.purpose === "flush" ? 1 : 2);
    writeWaiters(w, io.waiters);
  }
  const retained = [...state.retained.keys()].sort();
  w.u32(retained.length);
  for (const uuid of retained) {
    const { node, luid, cleanBits, resync } = state.retained.get(uuid)!;
    w.string(uuid).u32(node).u64(luid).u64(cleanBits.size).bitmap(cleanBits);
    w.bool(resync !== null);
    if (resync) writeResync(w, resync);
  }
  const { written, size, segments, gapOffsets } = w.layout();
  const bytes = options.allocate ? options.allocate(size) : new Uint8Array(size);
  if (bytes.length !== size) throw new RangeError("allocate gave a buffer of the wrong size");
  const pieceBytes = options.pieceBytes ?? COPY_PIECE_BYTES;
  // The copies watch their bitmaps from now on: this is the moment the snapshot is of.
  const work: (Segment | BitmapCopy)[] = [];
  w.bitmaps.forEach((b, i) => {
    work.push(segments[i]!, b.copyLater(bytes, gapOffsets[i]!, pieceBytes));
  });
  work.push(segments[w.bitmaps.length]!);
  return new SnapshotJob(bytes, written, work, state.position);
}

const ascending = (a: number, b: number) => a - b;

/** `values` ascending; no array made for the common empty set (a snapshot of 1,024 logs). */
function sortedOf(values: ReadonlySet<number>): number[] {
  return values.size === 0 ? [] : [...values].sort(ascending);
}

function writeGroup(w: SnapshotWriter, g: LogGroup): void {
  w.string(g.uuid).u64(g.regionCount).bool(g.loading);
  w.u32(g.members.length);
  for (const m of g.members) w.u32(m.node).u64(m.luid);
  w.bitmap(g.cleanBits).bitmap(g.syncBits);
  if (g.markers.size === 0) w.u32(0);
  else {
    const regions = [...g.markers.keys()].sort(ascending);
    w.u32(regions.length);
    for (const region of regions) {
      const nodes = g.markers.get(region)!;
      w.u64(region).u32(nodes.length);
      for (const n of nodes) w.u32(n);
    }
  }
  // u64 writes a number and its BigInt as the same bytes; the number needs no BigInt.
  w.u64(g.recoveringRegion === NO_REGION ? NONE_U64 : g.recoveringRegion);
  w.u32(g.recoverer).u64(g.syncSearch).bool(g.recoveryInvalidated);
  w.u32(g.recoveryRequests.length);
  for (const region of g.recoveryRequests) w.u64(region);
  w.bool(g.touched).bool(g.logDevFailed);
  w.u64(g.lastWriteIo === NO_IO ? NONE_U64 : g.lastWriteIo);
  writeWaiters(w, g.waitingResumes);
  const resync = g.resync;
  // One flags byte each (bit 0 as in version 2, bit 1 added later), so the bytes of a
  // state without the later flags are unchanged.
  w.u8((resync !== null ? 1 : 0) | (g.sweepHeld ? 2 : 0));
  const stale = sortedOf(g.staleHints);
  w.u32(stale.length);
  for (const n of stale) w.u32(n);
  if (resync) writeResync(w, resync);
}

function writeResync(w: SnapshotWriter, resync: ResyncState): void {
  w.string(resync.id).u64(resync.first).u64(resync.last).u64(resync.startedAt);
  // Bit 2 (added later, so a state without a throttle keeps its bytes): an allowance follows.
  const allowed = resync.allowance !== null;
  w.u8((resync.paused ? 1 : 0) | (resync.armed ? 2 : 0) | (allowed ? 4 : 0));
  if (allowed) w.u32(resync.allowance!);
  // Written as `bytes(made.toBytes())` before: the same bytes (`made` has the log's size).
  w.u64(resync.madeCount).bitmap(resync.made);
}

function readResync(r: ByteReader, regionCount: number): ResyncState {
  const id = r.string();
  const first = r.u64();
  const last = r.u64();
  const startedAt = r.u64();
  const state = r.u8();
  const paused = (state & 1) !== 0;
  const armed = (state & 2) !== 0;
  const allowance = (state & 4) !== 0 ? r.u32() : null;
  const madeCount = r.u64();
  const made = new Bitmap(regionCount);
  made.readBytes(r.bytes(), 0);
  return { id, first, last, startedAt, paused, armed, allowance, made, madeCount };
}

function readGroup(r: ByteReader, version: number): LogGroup {
  const g = newLogGroup(r.string(), r.u64());
  g.loading = r.bool();
  const members = r.u32();
  for (let i = 0; i < members; i++) g.members.push({ node: r.u32(), luid: r.u64Big() });
  g.cleanBits.readBytes(r.bytes(), 0);
  g.syncBits.readBytes(r.bytes(), 0);
  const regions = r.u32();
  for (let i = 0; i < regions; i++) {
    const region = r.u64();
    const count = r.u32();
    const nodes: number[] = [];
    for (let j = 0; j < count; j++) nodes.push(r.u32());
    g.markers.set(region, nodes);
  }
  const recovering = r.u64Big();
  g.recoveringRegion = recovering === NONE_U64 ? NO_REGION : Number(recovering);
  g.recoverer = r.u32();
  g.syncSearch = r.u64();
  if (version > SNAPSHOT_VERSION_NO_INVALIDATION) g.recoveryInvalidated = r.bool();
  const queued = r.u32();
  for (let i = 0; i < queued; i++) {
    const region = r.u64();
    g.recoveryRequests.push(region);
    g.queuedRecovery.add(region);
  }
  g.touched = r.bool();
  g.logDevFailed = r.bool();
  const lastWrite = r.u64Big();
  g.lastWriteIo = lastWrite === NONE_U64 ? NO_IO : Number(lastWrite);
  g.waitingResumes.push(...readWaiters(r));
  const resyncFlags = version > SNAPSHOT_VERSION_NO_RESYNC ? r.u8() : 0;
  g.sweepHeld = (resyncFlags & 2) !== 0;
  if (version > SNAPSHOT_VERSION_NO_HINTS) {
    const stale = r.u32();
    for (let i = 0; i < stale; i++) g.staleHints.add(r.u32());
  }
  if (resyncFlags & 1) g.resync = readResync(r, g.regionCount);
  return g;
}

export function decodeSnapshot(
  bytes: Uint8Array,
  options: ClusterLogOptions,
): Result<ClusterState, SnapshotError> {
  try {
    const r = new ByteReader(bytes);
    const magic = r.u32();
    const version = r.u32();
    if (
      magic !== SNAPSHOT_MAGIC ||
      (version !== SNAPSHOT_VERSION &&
        version !== SNAPSHOT_VERSION_NO_RETAINED &&
        version !== SNAPSHOT_VERSION_NO_HINTS &&
        version !== SNAPSHOT_VERSION_NO_INVALIDATION &&
        version !== SNAPSHOT_VERSION_NO_RESYNC)
    ) {
      return fail("bad-snapshot", "not a cluster-log snapshot of this version");
    }
    const quirks = r.bool();
    if (quirks !== (options.cmirrordQuirks ?? false)) {
      return fail("bad-snapshot", "snapshot was taken with different cmirrordQuirks");
    }
    const state = new ClusterState(options);
    state.position = r.u64();
    state.nextIoId = r.u64();
    const nodes = r.u32();
    for (let i = 0; i < nodes; i++) state.nodes.add(r.u32());

    const instances = r.u32();
    for (let i = 0; i < instances; i++) {
      const node = r.u32();
      const uuid = r.string();
      const luid = r.u64Big();
      const args = r.string();
      const parsed = parseCtr(encodeAscii(args), options);
      if (!parsed.ok) return fail("bad-snapshot", `instance ${uuid}: ${parsed.message}`);
      state.instances.set(instanceKey(node, uuid, luid), {
        node,
        uuid,
        luid,
        config: parsed.value.config,
        official: r.bool(),
        recoveryHalted: r.bool(),
        inSync: r.bool(),
        logDevFailed: r.bool(),
        pendingSyncCount: r.u64(),
        hintBound: version > SNAPSHOT_VERSION_NO_HINTS ? r.u64() : parsed.value.config.regionCount,
      });
    }

    const groups = r.u32();
    for (let i = 0; i < groups; i++) {
      const g = readGroup(r, version);
      state.groups.set(g.uuid, g);
    }

    const ios = r.u32();
    for (let i = 0; i < ios; i++) {
      const io: PendingIo = {
        ioId: r.u64(),
        kind: r.u8() === 0 ? "read" : "write",
        uuid: r.string(),
        node: r.u32(),
        purpose: PURPOSES[r.u8()] ?? "flush",
        waiters: readWaiters(r),
      };
      state.pendingIo.set(io.ioId, io);
    }
    if (version > SNAPSHOT_VERSION_NO_RETAINED) {
      const retained = r.u32();
      for (let i = 0; i < retained; i++) {
        const uuid = r.string();
        const node = r.u32();
        const luid = r.u64Big();
        const cleanBits = new Bitmap(r.u64());
        cleanBits.readBytes(r.bytes(), 0);
        const resync = r.bool() ? readResync(r, cleanBits.size) : null;
        state.retained.set(uuid, { node, luid, cleanBits, resync });
      }
    }
    if (!r.done) return fail("bad-snapshot", "trailing bytes after snapshot");
    return ok(state);
  } catch (e) {
    if (e instanceof ByteReaderError || e instanceof RangeError) {
      return fail("bad-snapshot", e.message);
    }
    throw e;
  }
}
