import { randomBytes } from "node:crypto";
import {
  ClusterLog,
  type ClusterLogOptions,
  DM_ULOG_CTR,
  DM_ULOG_DTR,
  DM_ULOG_HEADER_SIZE,
  DM_ULOG_RESUME,
  DM_UUID_LEN,
  type DmUlogRequest,
  errno,
  type IoRequest,
  isRequestType,
  type NodeId,
  type Operation,
  type ReplyForm,
  type RequestHeader,
  replyForm,
  type SnapshotJob,
  serverOf,
  ULOG_HEADER,
} from "@mirrorplane/clusterlog";
import type { Logger } from "pino";
import {
  type BusSnapshot,
  type ClusterBus,
  type OrderedOperation,
  publishedNumber,
} from "./bus.ts";
import type { LogDeviceProvider } from "./log-devices.ts";
import { LogIoQueue } from "./log-io.ts";
import { RateLimitedLog } from "./rate-limited-log.ts";
import { type ReplyFraming, STREAM_FRAMING } from "./reply-framing.ts";
import { type DecodeCache, Session, type SessionHost, type SessionSink, Turns } from "./session.ts";
import { StreamTransport, type TcpAuth } from "./stream-transport.ts";

// The agent side of the cluster log (CLUSTERLOG-SERVER.md), the replica: kernel requests
// come in on a transport's session (session.ts; stream-transport.ts, connector-transport.ts),
// go through the ClusterBus's total order to every replica's
// ClusterLog, and the replies addressed to this node go back on the connection that sent
// the request. The I/O addressed to this node is performed here and its outcome
// published as `io-done`, so a disk failure is part of the ordered history.

// The core's header layout, read straight from a session's input (PB1).
const {
  luid: OFF_LUID,
  uuid: OFF_UUID,
  version: OFF_VERSION,
  error: OFF_ERROR,
  requestType: OFF_REQUEST_TYPE,
  dataSize: OFF_DATA_SIZE,
} = ULOG_HEADER;
/**
 * A background snapshot copies this much of the bitmaps per event-loop turn (issue 15):
 * about 0.1–0.3 ms of memcpy, so a 64 MiB snapshot (1,024 logs of 262,144 regions) takes
 * 64 turns and no request waits behind more than one of them. The first turn also encodes
 * everything but the bitmaps: about 4 µs per log (4-5 ms at the 1,024-log limit).
 */
export const SNAPSHOT_BYTES_PER_TURN = 1 << 20;

export interface ClusterLogServerOptions {
  readonly bus: ClusterBus;
  readonly devices: LogDeviceProvider;
  readonly log: Logger;
  readonly clusterLog?: ClusterLogOptions;
  /** Save a snapshot through the bus after this many applied operations (0: never). */
  readonly snapshotEvery?: number;
  /** Also save one this often when anything changed (ms, 0: never). */
  readonly snapshotIntervalMs?: number;
  /**
   * Called with every snapshot handed to the bus, before it (a copy kept on disk for
   * inspection over NATS, command.ts). Must not throw or change the bytes.
   */
  readonly snapshotCopy?: (snapshot: BusSnapshot) => void;
  /**
   * Bitmap bytes a background snapshot copies per event-loop turn (SNAPSHOT_BYTES_PER_TURN;
   * issue 15). The rest of the turn is the requests'.
   */
  readonly snapshotBytesPerTurn?: number;
  /** Prefix of this process's msgIds; unique per start so ids never collide with a past run. */
  readonly incarnation?: string;
  readonly maxFrameSize?: number;
  /** Frames one connection's input may hand over per turn (FRAMES_PER_TURN; the fairness bench's baseline turns it off with Infinity). */
  readonly framesPerTurn?: number;
  /** Frames all backlogs together get per turn (BACKLOG_FRAMES_PER_TURN). */
  readonly backlogFramesPerTurn?: number;
}

export interface ServerStats {
  connections: number;
  requests: number;
  replies: number;
  answeredLocally: number;
  published: number;
  malformed: number;
  protocolCloses: number;
  /** Replies computed for a request whose connection or log was already gone (P2). */
  dropped: number;
  /** In-flight requests of a lost connection, released without an answer. */
  abandoned: number;
  /** In-flight requests answered with an error by a teardown (DTR, shutdown, bad stream). */
  failedByTeardown: number;
  applied: number;
  snapshots: number;
  /** TCP clients refused for a missing or wrong credential. */
  authRefused: number;
  /** Joins, leaves, failures and serving-node changes applied (membership()). */
  membershipEvents: number;
}

/**
 * A kernel request of this node, one object from its frame to its reply (PERF.md PB1): the
 * decoded request the core applies (its `seq` is the wire seq, unique among this node's
 * requests in flight), the `request` operation that carries it through the order (its
 * `request` is the object itself), and the server's record of it while it is in flight.
 * On the in-process order every member is handed this very object; a server knows its
 * own by `server`.
 */
class KernelRequest implements DmUlogRequest {
  readonly kind = "request";
  readonly node: NodeId;
  readonly luid: bigint;
  readonly uuid: string;
  readonly version: number;
  readonly error: number;
  readonly seq: number;
  readonly requestType: number;
  readonly data: Uint8Array;
  /**
   * Where its frame is: a DataView holding it (a socket chunk's) and the frame's offset in
   * it. Replies are its 160-byte header with error and data_size filled in.
   */
  readonly view: DataView;
  readonly at: number;
  readonly server: ClusterLogServer;
  readonly session: Session;
  /** Its publication number: published as the server's id prefix and this (ClusterBus.publish). */
  n = 0;
  /** In the server's in-flight list: published, not answered, its connection not gone. */
  inFlight = false;
  /** Neighbours in the server's in-flight list (publication order). */
  prev: KernelRequest | null = null;
  next: KernelRequest | null = null;
  /** Applied by this replica (its state change happened), or answered before that. */
  delivered = false;
  /** Seen in the order by this replica. */
  ordered = false;
  /** Published and not seen in the order: in the server's `#unconfirmed` (P23). */
  listed = false;

  constructor(
    server: ClusterLogServer,
    session: Session,
    view: DataView,
    at: number,
    luid: bigint,
    uuid: string,
    version: number,
    error: number,
    seq: number,
    requestType: number,
    dataSize: number,
  ) {
    this.server = server;
    this.session = session;
    this.node = server.nodeId;
    this.view = view;
    this.at = at;
    this.luid = luid;
    this.uuid = uuid;
    this.version = version;
    this.error = error;
    this.seq = seq;
    this.requestType = requestType;
    // A view, not a copy: the frame is in a socket chunk Node never reuses, and nothing
    // changes it (frame-reader.ts).
    this.data = new Uint8Array(view.buffer, view.byteOffset + at + DM_ULOG_HEADER_SIZE, dataSize);
  }

  /** The operation's request: this object. */
  get request(): DmUlogRequest {
    return this;
  }

  /** The request type proper (`& 0xFF`, spec §1.2). */
  get type(): number {
    return this.requestType & 0xff;
  }
}

/** A membership change as this member applied it (ClusterLogServer.membership). */
export interface MembershipEvent {
  readonly kind: "node-join" | "node-leave" | "node-failed" | "server";
  /** The member concerned; for "server", the log's new serving node (null: none). */
  readonly node: NodeId | null;
  /** Who published it (a failure: the declaring survivor); for "server", the previous one. */
  readonly by: NodeId | null;
  readonly seq: number;
  readonly at: number;
  readonly uuid?: string;
}

export interface MembershipView {
  readonly members: readonly NodeId[];
  readonly servedBy: Readonly<Record<string, NodeId>>;
  readonly recent: readonly MembershipEvent[];
}

/**
 * The cluster-log server of one node: a ClusterLog replica fed by the bus, the sessions of
 * the local transport, and the I/O lanes for the log devices this node writes.
 */
const EMPTY = new Uint8Array(0);

export class ClusterLogServer implements SessionHost {
  readonly nodeId: NodeId;
  readonly stats: ServerStats = {
    connections: 0,
    requests: 0,
    replies: 0,
    answeredLocally: 0,
    published: 0,
    malformed: 0,
    protocolCloses: 0,
    dropped: 0,
    abandoned: 0,
    failedByTeardown: 0,
    applied: 0,
    snapshots: 0,
    authRefused: 0,
    membershipEvents: 0,
  };
  readonly #bus: ClusterBus;
  readonly #log: Logger;
  readonly #options: ClusterLogServerOptions;
  readonly #incarnation: string;
  /**
   * `p:<node>:<incarnation>:` — every publication of this server (kernel requests, io-done,
   * control operations) is this prefix and its number, 1, 2, 3… (`#published`).
   */
  readonly #idPrefix: string;
  readonly #io: LogIoQueue;
  #clusterLog: ClusterLog | null = null;
  #early: OrderedOperation[] = [];
  #lastSeq = 0;
  /**
   * Every request of this node that is published and not yet answered, in publication
   * order: an intrusive list, no map insert and delete per request (PB1: a map emptied and
   * refilled per request reallocates its table every time).
   */
  #pendingHead: KernelRequest | null = null;
  #pendingTail: KernelRequest | null = null;
  #pendingCount = 0;
  /**
   * The same by wire seq, made the first time a reply comes with a header that is not the
   * request itself (a bus that carries operations as bytes, JetStream: its replies are
   * matched by wire seq from then on). In-process a reply's header is the request object,
   * and no map is kept (PB1: a map insert and delete per request).
   */
  #pendingByWire: Map<number, KernelRequest> | null = null;
  /**
   * Published and not yet seen in the order, by publication number; re-published after a
   * reconnection (P23). A kernel request is listed only if its publication returned before
   * it was ordered: on the in-process order it is ordered and applied at once, unless a
   * simulation hook held or lost it.
   */
  readonly #unconfirmed = new Map<number, Operation>();
  /** `publishControl` callers, by publication number, until this replica applies theirs. */
  readonly #controlWaiters = new Map<
    number,
    { resolve: (seq: number) => void; reject: (error: unknown) => void }
  >();
  readonly #onRequestFailed = (error: unknown, op: Operation) => {
    this.#publishFailed((op as KernelRequest).n, error);
  };
  /** Replies of the operation being applied, straight from the core (`applyTo`, PB1). */
  readonly #replySink = {
    reply: (
      node: NodeId,
      header: RequestHeader,
      form: ReplyForm,
      error: number,
      payload: Uint8Array,
    ) => {
      if (node === this.nodeId) this.#route(header, form, error, payload);
    },
  };
  /** Replies to local read-only requests (`answerLocallyTo`): the header is the request. */
  readonly #localSink = {
    reply: (
      _node: NodeId,
      header: RequestHeader,
      form: ReplyForm,
      error: number,
      payload: Uint8Array,
    ) => {
      const request = header as KernelRequest;
      this.stats.answeredLocally++;
      this.stats.replies++;
      request.session.reply(request.view, request.at, form, error, payload);
    },
  };
  readonly #snapshotEvery: number;
  /** Publications so far: the last one's number (ClusterBus.publish numbers 1, 2, 3…). */
  #published = 0;
  #nextSessionId = 1;
  readonly #sessions = new Set<Session>();
  readonly #turns: Turns;
  readonly #streams: StreamTransport;
  #state: "new" | "running" | "draining" | "closed" = "new";
  #drainWaiters: (() => void)[] = [];
  /** Position of the latest snapshot started (the next is due `snapshotEvery` after it). */
  #snapshotPosition = 0;
  /** Position of the latest snapshot handed to the bus. */
  #savedPosition = 0;
  #snapshotScheduled = false;
  /** The background snapshot being made (one at a time), and the seq it is of. */
  #snapshotJob: { job: SnapshotJob; seq: number } | null = null;
  #snapshotTimer: NodeJS.Timeout | null = null;
  readonly #appliedListeners = new Set<(entry: OrderedOperation) => void>();
  /** Refused CTRs: one line per limit a minute at most, with the count (issue 15). */
  readonly #refusals: RateLimitedLog;

  constructor(options: ClusterLogServerOptions) {
    this.#options = options;
    this.#bus = options.bus;
    this.nodeId = options.bus.nodeId;
    this.#log = options.log;
    this.#refusals = new RateLimitedLog(options.log);
    this.#turns = new Turns(options.backlogFramesPerTurn);
    this.#streams = new StreamTransport(this, options.log);
    this.#incarnation = options.incarnation ?? randomBytes(6).toString("hex");
    this.#idPrefix = `p:${this.nodeId}:${this.#incarnation}:`;
    this.#snapshotEvery = options.snapshotEvery ?? 4096;
    this.#io = new LogIoQueue(
      options.devices,
      (io, error, data) => this.#ioDone(io, error, data),
      options.log,
    );
  }

  /** The replica (read-only use: tests, status). */
  get clusterLog(): ClusterLog {
    if (!this.#clusterLog) throw new Error("server not started");
    return this.#clusterLog;
  }

  /** The last ordered seq this replica applied. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /**
   * Calls `listener` synchronously after every operation this replica applies, in order
   * (resync-control.ts enforces a throttle at the operation that spends it). It must not
   * throw or block; returns the unsubscribe.
   */
  onApplied(listener: (entry: OrderedOperation) => void): () => void {
    this.#appliedListeners.add(listener);
    return () => this.#appliedListeners.delete(listener);
  }

  get coalescedWrites(): number {
    return this.#io.coalescedWrites;
  }

  /** Joins the bus (from its latest snapshot, if any) and starts applying. */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error("server already started");
    let restoreError: unknown = null;
    const restore = (snapshot: BusSnapshot | null) => {
      if (this.#clusterLog || restoreError) return;
      try {
        this.#clusterLog = this.#fromSnapshot(snapshot);
      } catch (error) {
        restoreError = error; // `restore` must not throw; start() does instead
        return;
      }
      this.#lastSeq = snapshot?.seq ?? 0;
      this.#snapshotPosition = this.#clusterLog.position;
      this.#savedPosition = this.#clusterLog.position;
    };
    const snapshot = await this.#bus.start({
      restore,
      deliver: (entry) => this.#deliver(entry),
      reconnected: () => this.#republish(),
      // A refused (forged) message is a hole in the order, not a gap (issue 15).
      skipped: (seq) => {
        if (this.#clusterLog && this.#early.length === 0 && seq === this.#lastSeq + 1) {
          this.#lastSeq = seq;
        }
      },
    });
    // A bus without `restore` delivers before `start` resolves: those wait in #early.
    restore(snapshot);
    if (restoreError) {
      await this.#bus.close().catch(() => {});
      throw restoreError;
    }
    for (const entry of this.#early.splice(0)) this.#apply(entry);
    this.#state = "running";
    const interval = this.#options.snapshotIntervalMs ?? 60_000;
    if (interval > 0) {
      this.#snapshotTimer = setInterval(() => this.#startSnapshot(), interval);
      this.#snapshotTimer.unref();
    }
    this.#log.info({ nodeId: this.nodeId, fromSeq: this.#lastSeq }, "cluster-log replica started");
  }

  #fromSnapshot(snapshot: BusSnapshot | null): ClusterLog {
    if (!snapshot) return new ClusterLog(this.#options.clusterLog);
    const restored = ClusterLog.fromSnapshot(snapshot.bytes, this.#options.clusterLog);
    if (!restored.ok) {
      throw new Error(
        `cannot start from snapshot at seq ${snapshot.seq}: ${restored.error.message}`,
      );
    }
    return restored.value;
  }

  /** End of turn for `session` (SessionHost): one scheduler for every session (`Turns`). */
  endOfTurn(session: Session): void {
    this.#turns.endOfTurn(session);
  }

  // ---- transports ----

  /** Listen on a Unix stream socket (a stale socket file is replaced, a live one refused). */
  listenUnix(path: string): Promise<void> {
    return this.#streams.listenUnix(path);
  }

  /**
   * Listen on loopback TCP behind a credential (stream-transport.ts); returns the bound
   * port.
   */
  listenTcp(host: string, port: number, auth: TcpAuth): Promise<number> {
    return this.#streams.listenTcp(host, port, auth);
  }

  /** Accepting and serving requests (not yet started, or draining). */
  get running(): boolean {
    return this.#state === "running";
  }

  /** A transport-agnostic session (sockets use it; simulations drive it directly). */
  openSession(sink: SessionSink, framing: ReplyFraming = STREAM_FRAMING): Session {
    const session = new Session(
      this,
      this.#nextSessionId++,
      sink,
      this.#options.maxFrameSize,
      this.#options.framesPerTurn,
      framing,
    );
    this.#sessions.add(session);
    this.stats.connections++;
    return session;
  }

  // ---- requests ----

  /**
   * One whole frame from `session`, `length` bytes at `at` in `view` (a DataView of a
   * socket chunk: no view per frame, PB1). Never throws: whatever the bytes, one answer or
   * a close.
   */
  handleFrame(session: Session, view: DataView, at: number, length: number): void {
    this.stats.requests++;
    try {
      this.#handleFrame(session, view, at, length);
    } catch (error) {
      // Defensive: nothing below should throw; if it does, the client still gets an answer.
      this.#log.error({ err: error, session: session.id }, "request handling failed");
      this.rejectFrame(session, view, at, -errno.EIO, "internal error");
    }
  }

  #handleFrame(session: Session, view: DataView, at: number, length: number): void {
    const dataSize = view.getUint32(at + OFF_DATA_SIZE, true);
    if (DM_ULOG_HEADER_SIZE + dataSize !== length) {
      this.rejectFrame(
        session,
        view,
        at,
        -errno.EINVAL,
        `frame of ${length} bytes but data_size ${dataSize}`,
      );
      return;
    }
    const type = view.getUint8(at + OFF_REQUEST_TYPE); // the low byte: `& 0xFF`, [REC] spec §1.2
    if (type === 0) {
      // "Bad transmission": the kernel gets a bare NACK EAGAIN and resends (spec §1.1,
      // P22); on this transport that is a full reply with -EAGAIN.
      this.rejectFrame(session, view, at, -errno.EAGAIN, "request type 0");
      return;
    }
    if (!isRequestType(type)) {
      // [REC] P22: cmirrord never answers an unknown type, and the kernel retries forever.
      this.rejectFrame(session, view, at, -errno.EINVAL, `unknown request type ${type}`);
      return;
    }
    const request = this.#decode(session, view, at, dataSize);
    if (request === null) {
      this.rejectFrame(session, view, at, -errno.EINVAL, "uuid has no NUL within 129 bytes");
      return;
    }
    if (this.#state !== "running") {
      session.reply(view, at, replyForm(request.requestType), -errno.EAGAIN, EMPTY);
      return;
    }
    // Local read-only requests are answered from the replica (spec §4.2) — unless this
    // session has requests still on their way through the order, which they must not
    // overtake (a pipelined RESUME then IN_SYNC must see the resumed log).
    if (
      session.undelivered === 0 &&
      this.#clusterLog!.answerLocallyTo(this.nodeId, request, this.#localSink)
    ) {
      return;
    }
    this.#publish(request);
  }

  /**
   * The request at `at` in `view` (its data_size checked), or null when its uuid has no NUL
   * within the 129-byte field. Read straight from the bytes, the uuid string and luid
   * BigInt of the session's previous request reused when their bytes repeat, the payload a
   * view (PB1). Its seq is the wire seq it gets if it is published.
   */
  #decode(session: Session, view: DataView, at: number, dataSize: number): KernelRequest | null {
    const cache = session.decodeCache;
    if (cache.uuid === null || !sameUuid(cache, view, at)) {
      const header = new Uint8Array(view.buffer, view.byteOffset + at, DM_ULOG_HEADER_SIZE);
      const nul = header.indexOf(0, OFF_UUID);
      if (nul < 0 || nul >= OFF_UUID + DM_UUID_LEN) return null;
      setUuid(cache, latin1(header, OFF_UUID, nul));
    }
    const lo = view.getUint32(at + OFF_LUID, true);
    const hi = view.getUint32(at + OFF_LUID + 4, true);
    if (lo !== cache.luidLo || hi !== cache.luidHi) {
      cache.luid = (BigInt(hi) << 32n) | BigInt(lo);
      cache.luidLo = lo;
      cache.luidHi = hi;
    }
    // The wire seq of the next publication (§1.1: unique among this node's requests in
    // flight; a wire seq is reused only after 2^32 requests, and then one still in flight
    // is skipped).
    let wire = (this.#published + 1) >>> 0;
    if (this.#published >= 0xffff_ffff) while (this.#pendingWire(wire)) wire = (wire + 1) >>> 0;
    return new KernelRequest(
      this,
      session,
      view,
      at,
      cache.luid,
      cache.uuid!,
      view.getUint32(at + OFF_VERSION, true),
      view.getInt32(at + OFF_ERROR, true),
      wire,
      view.getUint32(at + OFF_REQUEST_TYPE, true),
      dataSize,
    );
  }

  /** An error reply built from the raw header (nothing else of the frame need be valid). */
  rejectFrame(session: Session, view: DataView, at: number, error: number, reason: string): void {
    this.stats.malformed++;
    this.stats.replies++;
    this.#log.debug({ session: session.id, reason, error }, "request rejected");
    session.reply(view, at, replyForm(view.getUint32(at + OFF_REQUEST_TYPE, true)), error, EMPTY);
  }

  /** The stream cannot be framed: answer what is in flight, then close this connection only. */
  protocolClose(session: Session, reason: string): void {
    this.stats.protocolCloses++;
    this.#log.warn({ session: session.id, reason }, "closing connection: unframeable input");
    session.end(-errno.EAGAIN);
  }

  #publish(request: KernelRequest): void {
    const n = ++this.#published;
    const session = request.session;
    request.n = n;
    this.#addPending(request);
    session.inflight++;
    session.undelivered++;
    this.stats.published++;
    // The ordered request carries the wire seq (its `seq`); its reply is matched back
    // through it, or on the in-process order through the object itself.
    this.#bus.publish(request, this.#idPrefix, n, this.#onRequestFailed);
    // In-process it is usually ordered and applied (and answered) by now.
    if (!request.ordered) {
      request.listed = true;
      this.#unconfirmed.set(n, request);
    }
  }

  /** Publishes an operation that is not a kernel request (io-done, control), listed first. */
  #publishOther(op: Operation): number {
    const n = ++this.#published;
    this.#unconfirmed.set(n, op); // before: in-process it is delivered within `publish`
    this.#bus.publish(op, this.#idPrefix, n, (error) => this.#publishFailed(n, error));
    return n;
  }

  #publishFailed(n: number, error: unknown): void {
    const op = this.#unconfirmed.get(n);
    if (op === undefined) return; // delivered after all
    if (this.#state === "running") {
      // The bus re-publishes after reconnecting (`reconnected`), same id (P23).
      this.#log.warn(
        { err: error, msgId: this.#idPrefix + n },
        "publish failed; will re-publish on reconnection",
      );
      return;
    }
    this.#unconfirmed.delete(n);
    if (op instanceof KernelRequest) {
      op.listed = false;
      if (op.inFlight) this.#fail(op, -errno.EAGAIN);
    }
    const waiter = this.#controlWaiters.get(n);
    if (waiter) {
      this.#controlWaiters.delete(n);
      waiter.reject(error);
    }
  }

  #republish(): void {
    for (const [n, op] of [...this.#unconfirmed]) {
      const onFailed =
        op instanceof KernelRequest
          ? this.#onRequestFailed
          : (error: unknown) => this.#publishFailed(n, error);
      this.#bus.publish(op, this.#idPrefix, n, onFailed);
    }
  }

  #ioDone(io: IoRequest, error: number, data?: Uint8Array): void {
    const op: Operation =
      data === undefined
        ? { kind: "io-done", ioId: io.ioId, error }
        : { kind: "io-done", ioId: io.ioId, error, data };
    this.#publishOther(op);
  }

  // ---- membership, as every member sees it (issue 14) ----

  /** The last membership changes this member applied, newest last (at most 100). */
  readonly #membershipEvents: MembershipEvent[] = [];
  /** Which node serves each log (the first member of its group), as last logged. */
  readonly #servedBy = new Map<string, NodeId>();

  /** Current members, who serves each log, and the recent changes: for the API and metrics. */
  membership(): MembershipView {
    const state = this.#clusterLog?.state;
    return {
      members: state ? [...state.nodes].sort((a, b) => a - b) : [],
      servedBy: Object.fromEntries(this.#servedBy),
      recent: [...this.#membershipEvents],
    };
  }

  #recordMembership(event: MembershipEvent): void {
    this.#membershipEvents.push(event);
    if (this.#membershipEvents.length > 100) this.#membershipEvents.shift();
    this.stats.membershipEvents++;
  }

  /**
   * One info line per join, leave and failure on every member, with who published it
   * (for a failure: the survivor that declared it); a warning when it is this member that
   * is fenced out. Replayed history while joining is recorded, not logged.
   */
  #membershipChanged(entry: OrderedOperation, kind: MembershipEvent["kind"], node: NodeId): void {
    const members = [...this.#clusterLog!.state.nodes].sort((a, b) => a - b);
    // A failure is published by the survivor that declared it (JetStream); the in-process
    // order writes it under the failed node's own id: then nobody in particular declared it.
    const by = kind === "node-failed" && entry.origin === node ? null : entry.origin;
    this.#recordMembership({ kind, node, by, seq: entry.seq, at: Date.now() });
    if (this.#state !== "new") {
      const fields = { node, by, seq: entry.seq, members };
      const declared = by === null ? "declared failed" : `declared failed by node ${by}`;
      if (kind === "node-join") this.#log.info(fields, `cluster member ${node} joined`);
      else if (kind === "node-leave") this.#log.info(fields, `cluster member ${node} left`);
      else if (node === this.nodeId) {
        this.#log.warn(fields, `this member (${node}) was ${declared}: fenced out`);
      } else this.#log.info(fields, `cluster member ${node} ${declared}`);
    }
    this.#checkServers(entry.seq);
  }

  /** Logs each log whose serving node changed (a CTR, a resume, a DTR, a member gone). */
  #checkServers(seq: number): void {
    const groups = this.#clusterLog!.state.groups;
    for (const [uuid, group] of groups) {
      const server = serverOf(group);
      const was = this.#servedBy.get(uuid) ?? null;
      if (server === was) continue;
      if (server === null) this.#servedBy.delete(uuid);
      else this.#servedBy.set(uuid, server);
      this.#recordMembership({ kind: "server", node: server, by: was, seq, at: Date.now(), uuid });
      if (this.#state !== "new") {
        this.#log.info(
          { uuid, node: server, was, seq },
          server === null
            ? `log ${uuid} has no serving node`
            : `log ${uuid} served by node ${server}`,
        );
      }
    }
    for (const uuid of [...this.#servedBy.keys()]) {
      if (!groups.has(uuid)) this.#servedBy.delete(uuid);
    }
  }

  // ---- the ordered stream ----

  #deliver(entry: OrderedOperation): void {
    if (!this.#clusterLog) {
      this.#early.push(entry); // before start() has the snapshot
      return;
    }
    this.#apply(entry);
  }

  #apply(entry: OrderedOperation): void {
    if (entry.seq <= this.#lastSeq) return; // delivered before
    if (entry.seq !== this.#lastSeq + 1) {
      this.#log.error({ expected: this.#lastSeq + 1, got: entry.seq }, "gap in the ordered stream");
    }
    this.#lastSeq = entry.seq;
    const op = entry.op;
    if (op instanceof KernelRequest) {
      // In-process: the very object this server published, or another member's.
      if (op.server === this) this.#confirmed(op);
    } else if (entry.origin === this.nodeId) {
      // Ours as bytes (JetStream), or an io-done or control operation: by its number.
      this.#ownDelivered(entry);
    }
    let io: readonly IoRequest[];
    try {
      // Replies are routed as the core produces them (`#replySink`); none while joining.
      io = this.#clusterLog!.applyTo(op, this.#replySink);
    } catch (error) {
      this.#log.error({ err: error, seq: entry.seq }, "cluster log failed to apply an operation");
      return;
    }
    this.stats.applied++;
    if (this.#appliedListeners.size > 0) {
      for (const listener of this.#appliedListeners) {
        try {
          listener(entry);
        } catch (error) {
          this.#log.error({ err: error, seq: entry.seq }, "applied-operation listener failed");
        }
      }
    }
    // Operations delivered while joining are history (a replay after the snapshot): their
    // replies went out long ago and their I/O was done by whoever it was addressed to —
    // performing it again would write a stale image. Nothing new can be addressed to a
    // joining node: it has no kernel requests and no resumed logs yet.
    if (this.#state === "new") return;
    for (let i = 0; i < io.length; i++) {
      const request = io[i]!;
      if (request.node === this.nodeId) this.#io.enqueue(request);
    }
    if (op.kind === "request" && op.node === this.nodeId) {
      if ((op.request.requestType & 0xff) === DM_ULOG_DTR) this.#releaseDevices();
    }
    if (op.kind === "node-join" || op.kind === "node-leave" || op.kind === "node-failed") {
      this.#membershipChanged(entry, op.kind, op.node);
    } else if (op.kind === "request" && (op.request.requestType & 0xff) <= DM_ULOG_RESUME) {
      // CTR, DTR, PRESUSPEND, POSTSUSPEND, RESUME: the only requests that change who serves.
      this.#checkServers(entry.seq);
    }
    const every = this.#snapshotEvery;
    if (
      every > 0 &&
      !this.#snapshotScheduled &&
      this.#snapshotJob === null &&
      this.#clusterLog!.position - this.#snapshotPosition >= every
    ) {
      this.#snapshotScheduled = true;
      setImmediate(() => this.#startSnapshot());
    }
  }

  /** An operation of this member seen in the order, found by its publication number. */
  #ownDelivered(entry: OrderedOperation): void {
    const n = publishedNumber(entry.msgId, this.#idPrefix);
    if (n < 0) return; // the bus's own (join, leave), or an earlier incarnation's
    const mine = this.#unconfirmed.get(n);
    if (mine instanceof KernelRequest) this.#confirmed(mine);
    else this.#unconfirmed.delete(n);
    const waiter = this.#controlWaiters.get(n);
    if (waiter) {
      this.#controlWaiters.delete(n);
      // Settles after this synchronous apply: the caller sees the operation applied.
      waiter.resolve(entry.seq);
    }
  }

  /** This server's request, seen in the order (in-process: the object it published). */
  #confirmed(request: KernelRequest): void {
    request.ordered = true;
    if (request.listed) {
      request.listed = false;
      this.#unconfirmed.delete(request.n);
    }
    if (!request.delivered) {
      request.delivered = true;
      if (request.inFlight) request.session.undelivered--;
    }
  }

  /** A reply for this node's kernel, as the core produces it. */
  #route(header: RequestHeader, form: ReplyForm, error: number, payload: Uint8Array): void {
    // Operations delivered while joining are history: their replies went out long ago.
    if (this.#state === "new") return;
    // In-process the header is the request this server published; otherwise (another bus,
    // a header the core rebuilt) it is found by its wire seq.
    let pending: KernelRequest | undefined;
    if (header instanceof KernelRequest) {
      if (header.server === this && header.inFlight) pending = header;
    } else {
      pending = this.#byWire().get(header.seq);
    }
    if (!pending) {
      this.stats.dropped++; // its connection or log is gone (P2): nothing is answered late
      return;
    }
    // Teardown is synchronous (issue 3): before a DTR is answered, every request of that
    // log this replica already applied and has not answered is failed, so nothing of it
    // can be answered after the DTR.
    if (pending.type === DM_ULOG_DTR && error === 0) this.#failLogRequests(pending);
    if (pending.type === DM_ULOG_RESUME && error === 0) this.#logResumed(pending.uuid);
    if (pending.type === DM_ULOG_CTR && error !== 0) this.#ctrRefused(pending, error);
    this.#finish(pending, form, error, payload, false);
  }

  /** A CTR over a limit says which (issue 15), at most one line a minute per limit. */
  #ctrRefused(request: KernelRequest, error: number): void {
    const why = this.#clusterLog!.explainCtrLimit(this.nodeId, request.data);
    if (why === null) return;
    this.#refusals.warn(
      { uuid: request.uuid, error, reason: why },
      `CTR refused: ${why.includes("regions") ? "too many regions" : "too many logs"}`,
    );
  }

  /** One line per resume of this node's log: what it starts from (after a crash: the disk's). */
  #logResumed(uuid: string): void {
    const group = this.#clusterLog!.state.groups.get(uuid);
    if (!group) return;
    this.#log.info(
      { uuid, inSync: group.syncBits.count, regionCount: group.regionCount },
      "log resumed",
    );
  }

  #failLogRequests(dtr: KernelRequest): void {
    for (const other of this.#pendingList()) {
      if (other === dtr || !other.delivered || other.uuid !== dtr.uuid) continue;
      if (other.luid !== dtr.luid && other.luid !== 0n && dtr.luid !== 0n) continue;
      this.#fail(other, -errno.EIO);
    }
  }

  /** Answers `pending` with `error` by the server's decision (teardown, a lost publication). */
  #fail(pending: KernelRequest, error: number): void {
    this.#finish(pending, replyForm(pending.requestType), error, EMPTY, true);
  }

  #finish(
    pending: KernelRequest,
    form: ReplyForm,
    error: number,
    payload: Uint8Array,
    teardown: boolean,
  ): void {
    this.#removePending(pending);
    const session = pending.session;
    session.inflight--;
    if (!pending.delivered) {
      pending.delivered = true;
      session.undelivered--;
    }
    if (teardown) this.stats.failedByTeardown++;
    this.stats.replies++;
    session.reply(pending.view, pending.at, form, error, payload);
    if (this.#pendingCount === 0 && this.#drainWaiters.length > 0) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }

  /**
   * A session ends: its in-flight requests are answered with `error` (a close we decide)
   * or released unanswered (the client is gone) — now, before anything else can answer
   * them; replies computed for them later are dropped.
   */
  releaseSession(session: Session, error: number | null): void {
    // The server's map, not one per session: one map operation less per request (PB1);
    // a session ends rarely, and then this walk is over what is in flight.
    const mine =
      session.inflight > 0 ? this.#pendingList().filter((p) => p.session === session) : [];
    for (const pending of mine) {
      if (error === null) {
        // Released unanswered; one not yet seen in the order is still re-published after a
        // reconnection (it stays unconfirmed), its reply then dropped.
        this.#removePending(pending);
        session.inflight--;
        this.stats.abandoned++;
      } else {
        this.#fail(pending, error);
      }
    }
    session.undelivered = 0;
    this.#sessions.delete(session);
    if (this.#pendingCount === 0) for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }

  #addPending(request: KernelRequest): void {
    request.inFlight = true;
    request.prev = this.#pendingTail;
    request.next = null;
    if (this.#pendingTail) this.#pendingTail.next = request;
    else this.#pendingHead = request;
    this.#pendingTail = request;
    this.#pendingCount++;
    this.#pendingByWire?.set(request.seq, request);
  }

  #removePending(request: KernelRequest): void {
    request.inFlight = false;
    const { prev, next } = request;
    if (prev) prev.next = next;
    else this.#pendingHead = next;
    if (next) next.prev = prev;
    else this.#pendingTail = prev;
    request.prev = null;
    request.next = null;
    this.#pendingCount--;
    this.#pendingByWire?.delete(request.seq);
  }

  /** The request in flight with this wire seq, if any. */
  #pendingWire(wire: number): KernelRequest | undefined {
    if (this.#pendingByWire) return this.#pendingByWire.get(wire);
    for (let r = this.#pendingHead; r; r = r.next) if (r.seq === wire) return r;
    return undefined;
  }

  /** The requests in flight by wire seq, kept from the first call on (`#pendingByWire`). */
  #byWire(): Map<number, KernelRequest> {
    if (this.#pendingByWire === null) {
      this.#pendingByWire = new Map();
      for (let r = this.#pendingHead; r; r = r.next) this.#pendingByWire.set(r.seq, r);
    }
    return this.#pendingByWire;
  }

  /** The requests in flight, oldest first (a copy: the caller may answer them). */
  #pendingList(): KernelRequest[] {
    const list: KernelRequest[] = [];
    for (let r = this.#pendingHead; r; r = r.next) list.push(r);
    return list;
  }

  /** Close the devices no table of this node names any more. */
  #releaseDevices(): void {
    const inUse = new Set<string>();
    for (const inst of this.#clusterLog!.state.instances.values()) {
      if (inst.node === this.nodeId && inst.config.logDevice) inUse.add(inst.config.logDevice);
    }
    this.#io.releaseUnused(inUse);
  }

  /**
   * Publish a control operation of this node (operator resync, issue 5) into the total
   * order; resolves once this replica has applied it. A failed publication is retried
   * once the bus reconnects, like a kernel request (P23).
   */
  publishControl(op: Operation): Promise<number> {
    if (this.#state !== "running") {
      return Promise.reject(new Error("cluster-log server is not running"));
    }
    return new Promise<number>((resolve, reject) => {
      // Waiting before publishing: in-process it is applied within `publish`.
      const n = this.#published + 1;
      this.#controlWaiters.set(n, { resolve, reject });
      this.#publishOther(op);
    });
  }

  /**
   * Save a snapshot through the bus now, made in this call (tests, the final save of
   * `stop`). A background one still being made is given up: this one is newer.
   */
  saveSnapshot(): void {
    this.#abandonSnapshot();
    const log = this.#clusterLog;
    if (!log || this.#state === "closed" || log.position === this.#savedPosition) return;
    this.#snapshotPosition = log.position;
    this.#handOver({ seq: this.#lastSeq, bytes: log.snapshot() }, log.position);
  }

  /** A background snapshot is being made (`snapshotEvery`, `snapshotIntervalMs`). */
  get snapshotInProgress(): boolean {
    return this.#snapshotJob !== null;
  }

  /**
   * Start a snapshot in the background (issue 15): its non-bitmap state is encoded now
   * (a few µs per log), its bitmaps are copied `snapshotBytesPerTurn` a turn by
   * `#stepSnapshot` — or copy-on-write by the operations applied meanwhile — so no request
   * waits behind a 4 MiB or 64 MiB copy, and the bytes are those of this position.
   */
  #startSnapshot(): void {
    this.#snapshotScheduled = false;
    const log = this.#clusterLog;
    if (!log || this.#state !== "running" || this.#snapshotJob !== null) return;
    if (log.position === this.#savedPosition) return;
    this.#snapshotPosition = log.position;
    // Not zeroed: the job writes every byte before it is complete (16 MiB zeroed in one
    // turn took 2-17 ms).
    const job = log.beginSnapshot({ allocate: (size) => Buffer.allocUnsafeSlow(size) });
    const running = { job, seq: this.#lastSeq };
    this.#snapshotJob = running;
    this.#stepSnapshot(running);
  }

  #stepSnapshot(running: { job: SnapshotJob; seq: number }): void {
    if (this.#snapshotJob !== running) return; // given up (saveSnapshot, stop)
    const perTurn = this.#options.snapshotBytesPerTurn ?? SNAPSHOT_BYTES_PER_TURN;
    if (!running.job.step(perTurn)) {
      setImmediate(() => this.#stepSnapshot(running));
      return;
    }
    this.#snapshotJob = null;
    this.#handOver({ seq: running.seq, bytes: running.job.bytes }, running.job.position);
  }

  #abandonSnapshot(): void {
    this.#snapshotJob?.job.abandon();
    this.#snapshotJob = null;
  }

  /** `snapshot` is of `position`; the bus owns its bytes from here on. */
  #handOver(snapshot: BusSnapshot, position: number): void {
    this.#savedPosition = position;
    this.stats.snapshots++;
    this.#options.snapshotCopy?.(snapshot);
    this.#bus.saveSnapshot(snapshot).catch((error) => {
      this.#log.warn({ err: error }, "saving a snapshot failed");
    });
  }

  /** Wait until nothing of this node is in flight (or `deadline` passes). */
  async #drain(deadline: number): Promise<void> {
    if (this.#pendingCount === 0) return;
    await untilDeadline(new Promise<void>((resolve) => this.#drainWaiters.push(resolve)), deadline);
  }

  /**
   * Drain and stop: stop accepting and reading, let in-flight requests finish (their I/O
   * completes and is applied), answer what is still open with -EAGAIN (the kernel resends,
   * spec §1.4), close the connections, leave the bus, close the devices.
   */
  async stop(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    if (this.#state === "closed" || this.#state === "draining") return;
    const wasRunning = this.#state === "running";
    this.#state = "draining";
    if (this.#snapshotTimer) clearInterval(this.#snapshotTimer);
    // Stop accepting now; `close` reports only once every connection is gone (below).
    const listenersClosed = this.#streams.closeListeners();
    for (const session of this.#sessions) session.stopReading();
    const deadline = Date.now() + (options.drainTimeoutMs ?? 5000);
    if (wasRunning) await this.#drain(deadline);
    for (const session of [...this.#sessions]) session.end(-errno.EAGAIN);
    // A hung device must not hold the shutdown forever: its lane closes when it returns.
    await untilDeadline(this.#io.whenIdle(), deadline);
    // The final state, made here and now: a background snapshot still being made is older.
    if (wasRunning) this.saveSnapshot();
    else this.#abandonSnapshot();
    this.#state = "closed";
    for (const waiter of this.#controlWaiters.values()) {
      waiter.reject(new Error("cluster-log server stopped before the operation was ordered"));
    }
    this.#controlWaiters.clear();
    await this.#bus.close().catch((error) => this.#log.warn({ err: error }, "bus close failed"));
    await this.#io.closeAll();
    this.#streams.destroyConnections();
    await listenersClosed;
    this.#log.info({ nodeId: this.nodeId }, "cluster-log server stopped");
  }
}

/**
 * Whether the uuid field of the frame at `at` in `view` holds `cache.uuid` and its NUL,
 * compared eight bytes at a time (PB1). Comparing the bytes as float64 is exact here: the
 * cached words hold no zero byte, so none is ±0, and two float64 that are neither ±0 nor
 * NaN are equal only if their bits are (a NaN word never compares equal, and then the
 * uuid is simply decoded again).
 */
function sameUuid(cache: DecodeCache, view: DataView, at: number): boolean {
  const words = cache.uuidWords;
  const base = at + OFF_UUID;
  for (let i = 0; i < words.length; i++) {
    if (view.getFloat64(base + 8 * i, true) !== words[i]) return false;
  }
  const uuid = cache.uuid!;
  for (let i = words.length * 8; i < uuid.length; i++) {
    if (view.getUint8(base + i) !== uuid.charCodeAt(i)) return false;
  }
  return view.getUint8(base + uuid.length) === 0;
}

/** `uuid` (no NUL in it) becomes the session's cached one. */
function setUuid(cache: DecodeCache, uuid: string): void {
  const bytes = new DataView(new ArrayBuffer(uuid.length));
  for (let i = 0; i < uuid.length; i++) bytes.setUint8(i, uuid.charCodeAt(i));
  const words = new Float64Array(uuid.length >> 3);
  for (let i = 0; i < words.length; i++) words[i] = bytes.getFloat64(8 * i, true);
  cache.uuid = uuid;
  cache.uuidWords = words;
}

/**
 * Latin-1 string of `bytes[from, to)`: every byte value kept, as the core's codec does
 * (`decodeRequest`), in one call.
 */
function latin1(bytes: Uint8Array, from: number, to: number): string {
  return String.fromCharCode.apply(null, bytes.subarray(from, to) as unknown as number[]);
}

async function untilDeadline(promise: Promise<void>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
    }),
  ]);
  clearTimeout(timer);
}
