import { randomBytes } from "node:crypto";
import { chmod, lstat, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import {
  ClusterLog,
  type ClusterLogOptions,
  DM_ULOG_DTR,
  DM_ULOG_HEADER_SIZE,
  type DmUlogRequest,
  decodeRequest,
  errno,
  type IoRequest,
  isRequestType,
  type NodeId,
  type Operation,
  type Reply,
} from "@mirrorplane/clusterlog";
import type { Logger } from "pino";
import type { BusSnapshot, ClusterBus, OrderedOperation } from "./bus.ts";
import { FrameReader, type FrameSink } from "./frame-reader.ts";
import type { LogDeviceProvider } from "./log-devices.ts";
import { LogIoQueue } from "./log-io.ts";

// The agent side of the cluster log (CLUSTERLOG-SERVER.md): kernel requests come in on a
// stream transport, go through the ClusterBus's total order to every replica's
// ClusterLog, and the replies addressed to this node go back on the connection that sent
// the request. The I/O addressed to this node is performed here and its outcome
// published as `io-done`, so a disk failure is part of the ordered history.

const OFF_ERROR = 144;
const OFF_REQUEST_TYPE = 152;
const OFF_DATA_SIZE = 156;
/** Reading pauses while a client leaves this much of our output unread. */
const OUTPUT_HIGH_WATER = 1 << 20;
/** A session's output buffer starts this large and shrinks back to it after a burst. */
const OUTPUT_INITIAL = 16 * 1024;

export interface ClusterLogServerOptions {
  readonly bus: ClusterBus;
  readonly devices: LogDeviceProvider;
  readonly log: Logger;
  readonly clusterLog?: ClusterLogOptions;
  /** Save a snapshot through the bus after this many applied operations (0: never). */
  readonly snapshotEvery?: number;
  /** Also save one this often when anything changed (ms, 0: never). */
  readonly snapshotIntervalMs?: number;
  /** Prefix of this process's msgIds; unique per start so ids never collide with a past run. */
  readonly incarnation?: string;
  readonly maxFrameSize?: number;
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
}

/** A request this node published and has not answered yet. */
interface PendingRequest {
  readonly session: Session;
  /** The transport's 160-byte header: replies are this header with error and data_size. */
  readonly header: Uint8Array;
  readonly wire: number;
  readonly msgId: string;
  readonly uuid: string;
  readonly luid: bigint;
  readonly type: number;
  /** Applied by this replica (its state change happened); the reply may still wait. */
  delivered: boolean;
}

/** Where a session's output goes: a socket, or a test's in-memory sink. */
export interface SessionSink {
  write(bytes: Uint8Array): void;
  /** Close after the written bytes are out. */
  end(): void;
}

/**
 * One client connection. Holds its in-flight requests (several connections may use the
 * same seqs: each request gets a node-unique wire seq in the ordered stream, and the
 * reply goes back with the client's own seq) and batches its output per event-loop turn.
 */
export class Session implements FrameSink {
  readonly id: number;
  /** Requests of this session published and not yet answered (they are in the server's map). */
  inflight = 0;
  /** Published requests not yet applied: local answers must wait behind them. */
  undelivered = 0;
  /** Decoding: payloads as views, and the previous request's uuid string reused (PB1). */
  readonly decodeOptions: { view: boolean; previous: DmUlogRequest | null } = {
    view: true,
    previous: null,
  };
  closed = false;
  readonly #server: ClusterLogServer;
  readonly #sink: SessionSink;
  readonly #reader: FrameReader;
  /** Replies of this event-loop turn, framed back to back: one write per turn (PB1). */
  #out = new Uint8Array(OUTPUT_INITIAL);
  #outView = new DataView(this.#out.buffer);
  #outBytes = 0;
  #flushScheduled = false;

  constructor(server: ClusterLogServer, id: number, sink: SessionSink, maxFrameSize?: number) {
    this.#server = server;
    this.id = id;
    this.#sink = sink;
    this.#reader = new FrameReader(maxFrameSize === undefined ? {} : { maxFrameSize });
  }

  /** Bytes from the client. */
  receive(chunk: Uint8Array): void {
    if (!this.closed) this.#reader.push(chunk, this);
  }

  /** Stop reading (shutdown drain); output still flows. */
  stopReading(): void {
    this.#reader.stop();
  }

  /** The client went away: release its requests now; nothing is answered afterwards. */
  lost(): void {
    if (this.closed) return;
    this.#reader.stop();
    this.#server.releaseSession(this, null);
    this.closed = true;
    this.#outBytes = 0;
  }

  /** Answer what is in flight with `error`, send everything, close. */
  end(error: number): void {
    if (this.closed) return;
    this.#reader.stop();
    this.#server.releaseSession(this, error);
    this.closed = true;
    this.#flush();
    this.#sink.end();
  }

  // FrameSink
  frame(bytes: Uint8Array): void {
    this.#server.handleFrame(this, bytes);
  }
  oversized(header: Uint8Array, length: number): void {
    this.#server.rejectFrame(this, header, -errno.EINVAL, `frame of ${length} bytes is too large`);
  }
  fatal(reason: string): void {
    this.#server.protocolClose(this, reason);
  }

  /**
   * Queue a reply: `header` (160 bytes) with error, data_size and payload filled in. Framed
   * straight into the session's output buffer: no allocation per reply (PB1).
   */
  reply(header: Uint8Array, error: number, payload: Uint8Array): void {
    if (this.closed) return;
    // data_size is forced to 0 whenever error ≠ 0 (spec §2 preamble).
    const data = error === 0 ? payload : EMPTY;
    const size = 4 + DM_ULOG_HEADER_SIZE + data.length;
    if (this.#outBytes + size > this.#out.length) this.#grow(size);
    const at = this.#outBytes;
    const out = this.#out;
    const view = this.#outView;
    view.setUint32(at, DM_ULOG_HEADER_SIZE + data.length, true);
    out.set(
      header.length === DM_ULOG_HEADER_SIZE ? header : header.subarray(0, DM_ULOG_HEADER_SIZE),
      at + 4,
    );
    view.setInt32(at + 4 + OFF_ERROR, error, true);
    view.setUint32(at + 4 + OFF_DATA_SIZE, data.length, true);
    if (data.length > 0) out.set(data, at + 4 + DM_ULOG_HEADER_SIZE);
    this.#outBytes = at + size;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      // After the poll phase, not after this read: libuv delivers several reads of one
      // socket in one phase, and their replies then go out in one write (PB1).
      setImmediate(this.#flushNow);
    }
  }

  readonly #flushNow = () => this.#flush();

  #grow(needed: number): void {
    let capacity = this.#out.length * 2;
    while (capacity < this.#outBytes + needed) capacity *= 2;
    const out = new Uint8Array(capacity);
    out.set(this.#out.subarray(0, this.#outBytes));
    this.#out = out;
    this.#outView = new DataView(out.buffer);
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#outBytes === 0) return;
    // A copy: the socket keeps what it is given until it is written out.
    const chunk = this.#out.slice(0, this.#outBytes);
    this.#outBytes = 0;
    if (this.#out.length > OUTPUT_INITIAL * 4) {
      this.#out = new Uint8Array(OUTPUT_INITIAL);
      this.#outView = new DataView(this.#out.buffer);
    }
    this.#sink.write(chunk);
  }
}

const EMPTY = new Uint8Array(0);

/**
 * The cluster-log server of one node: a ClusterLog replica fed by the bus, the sessions of
 * the local transport, and the I/O lanes for the log devices this node writes.
 */
export class ClusterLogServer {
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
  };
  readonly #bus: ClusterBus;
  readonly #log: Logger;
  readonly #options: ClusterLogServerOptions;
  readonly #incarnation: string;
  /** `r:<node>:<incarnation>:` — a request's msgId is this and its counter. */
  readonly #msgIdPrefix: string;
  readonly #io: LogIoQueue;
  #clusterLog: ClusterLog | null = null;
  #early: OrderedOperation[] = [];
  #lastSeq = 0;
  /** By wire seq: every request of this node that is published and not yet answered. */
  readonly #pending = new Map<number, PendingRequest>();
  /** Published and not yet seen delivered; re-published after a reconnection (P23). */
  readonly #unconfirmed = new Map<string, { op: Operation; pending: PendingRequest | null }>();
  #counter = 0;
  #nextSessionId = 1;
  readonly #sessions = new Set<Session>();
  readonly #listeners: Server[] = [];
  readonly #sockets = new Set<Socket>();
  #state: "new" | "running" | "draining" | "closed" = "new";
  #drainWaiters: (() => void)[] = [];
  #snapshotPosition = 0;
  #snapshotScheduled = false;
  #snapshotTimer: NodeJS.Timeout | null = null;
  readonly #appliedListeners = new Set<(entry: OrderedOperation) => void>();

  constructor(options: ClusterLogServerOptions) {
    this.#options = options;
    this.#bus = options.bus;
    this.nodeId = options.bus.nodeId;
    this.#log = options.log;
    this.#incarnation = options.incarnation ?? randomBytes(6).toString("hex");
    this.#msgIdPrefix = `r:${this.nodeId}:${this.#incarnation}:`;
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
    };
    const snapshot = await this.#bus.start({
      restore,
      deliver: (entry) => this.#deliver(entry),
      reconnected: () => this.#republish(),
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
      this.#snapshotTimer = setInterval(() => this.#saveSnapshot(), interval);
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

  // ---- transports ----

  /** Listen on a Unix stream socket (a stale socket file is replaced, a live one refused). */
  async listenUnix(path: string): Promise<void> {
    await removeStaleSocket(path);
    const server = this.#netServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    });
    // Like the netlink connector (CAP_NET_ADMIN), only root may talk to the log server.
    await chmod(path, 0o600);
    this.#log.info({ socket: path }, "cluster-log server listening");
  }

  /** Listen on loopback TCP; returns the bound port. */
  async listenTcp(host: string, port: number): Promise<number> {
    if (!isLoopback(host)) throw new Error(`--tcp must be a loopback address, not ${host}`);
    const server = this.#netServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    const bound = typeof address === "object" && address ? address.port : port;
    this.#log.info({ host, port: bound }, "cluster-log server listening on TCP");
    return bound;
  }

  #netServer(): Server {
    const server = createServer({ noDelay: true }, (socket) => this.#accept(socket));
    server.on("error", (error) => this.#log.error({ err: error }, "listener error"));
    this.#listeners.push(server);
    return server;
  }

  #accept(socket: Socket): void {
    if (this.#state !== "running") {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.setNoDelay?.(true);
    const session = this.openSession({
      write: (bytes) => {
        if (socket.destroyed) return;
        socket.write(bytes);
        if (socket.writableLength > OUTPUT_HIGH_WATER && !socket.isPaused()) {
          socket.pause();
          socket.once("drain", () => {
            if (!session.closed) socket.resume();
          });
        }
      },
      end: () => {
        if (!socket.destroyed) socket.end();
      },
    });
    socket.on("data", (chunk) => session.receive(chunk));
    socket.on("error", (error) =>
      this.#log.debug({ session: session.id, err: error }, "socket error"),
    );
    socket.on("close", () => {
      this.#sockets.delete(socket);
      session.lost();
      this.#log.debug({ session: session.id }, "connection closed");
    });
  }

  /** A transport-agnostic session (sockets use it; simulations drive it directly). */
  openSession(sink: SessionSink): Session {
    const session = new Session(this, this.#nextSessionId++, sink, this.#options.maxFrameSize);
    this.#sessions.add(session);
    this.stats.connections++;
    return session;
  }

  // ---- requests ----

  /** One whole frame from `session`. Never throws: whatever the bytes, one answer or a close. */
  handleFrame(session: Session, bytes: Uint8Array): void {
    this.stats.requests++;
    try {
      this.#handleFrame(session, bytes);
    } catch (error) {
      // Defensive: nothing below should throw; if it does, the client still gets an answer.
      this.#log.error({ err: error, session: session.id }, "request handling failed");
      this.rejectFrame(session, bytes, -errno.EIO, "internal error");
    }
  }

  #handleFrame(session: Session, bytes: Uint8Array): void {
    const dataSize = u32At(bytes, OFF_DATA_SIZE);
    if (DM_ULOG_HEADER_SIZE + dataSize !== bytes.length) {
      this.rejectFrame(
        session,
        bytes,
        -errno.EINVAL,
        `frame of ${bytes.length} bytes but data_size ${dataSize}`,
      );
      return;
    }
    const type = bytes[OFF_REQUEST_TYPE]!; // the low byte: `& 0xFF`, [REC] spec §1.2
    if (type === 0) {
      // "Bad transmission": the kernel gets a bare NACK EAGAIN and resends (spec §1.1,
      // P22); on this transport that is a full reply with -EAGAIN.
      this.rejectFrame(session, bytes, -errno.EAGAIN, "request type 0");
      return;
    }
    if (!isRequestType(type)) {
      // [REC] P22: cmirrord never answers an unknown type, and the kernel retries forever.
      this.rejectFrame(session, bytes, -errno.EINVAL, `unknown request type ${type}`);
      return;
    }
    // A view, not a copy: the frame is a view into a socket chunk Node never reuses, and
    // nothing changes it (frame-reader.ts).
    const decoded = decodeRequest(bytes, session.decodeOptions);
    if (!decoded.ok) {
      this.rejectFrame(session, bytes, -errno.EINVAL, decoded.error.message);
      return;
    }
    const request = decoded.value;
    session.decodeOptions.previous = request;
    if (this.#state !== "running") {
      session.reply(bytes, -errno.EAGAIN, EMPTY);
      return;
    }
    // Local read-only requests are answered from the replica (spec §4.2) — unless this
    // session has requests still on their way through the order, which they must not
    // overtake (a pipelined RESUME then IN_SYNC must see the resumed log).
    if (session.undelivered === 0) {
      const local = this.#clusterLog!.answerLocally(this.nodeId, request);
      if (local) {
        this.stats.answeredLocally++;
        this.stats.replies++;
        session.reply(bytes, local.error, local.payload);
        return;
      }
    }
    this.#publish(session, bytes, request);
  }

  /** An error reply built from the raw header (nothing else of the frame need be valid). */
  rejectFrame(session: Session, header: Uint8Array, error: number, reason: string): void {
    this.stats.malformed++;
    this.stats.replies++;
    this.#log.debug({ session: session.id, reason, error }, "request rejected");
    session.reply(header, error, EMPTY);
  }

  /** The stream cannot be framed: answer what is in flight, then close this connection only. */
  protocolClose(session: Session, reason: string): void {
    this.stats.protocolCloses++;
    this.#log.warn({ session: session.id, reason }, "closing connection: unframeable input");
    session.end(-errno.EAGAIN);
  }

  #publish(session: Session, header: Uint8Array, request: DmUlogRequest): void {
    const counter = ++this.#counter;
    let wire = counter >>> 0;
    while (this.#pending.has(wire)) wire = (wire + 1) >>> 0; // after 2^32 requests only
    const msgId = this.#msgIdPrefix + counter;
    const pending: PendingRequest = {
      session,
      header,
      wire,
      msgId,
      uuid: request.uuid,
      luid: request.luid,
      type: request.requestType & 0xff,
      delivered: false,
    };
    this.#pending.set(wire, pending);
    session.inflight++;
    session.undelivered++;
    // The ordered request carries the wire seq; its reply is matched back through it.
    // (Built field by field: an object spread is several times slower on this path.)
    const op: Operation = {
      kind: "request",
      node: this.nodeId,
      request: {
        luid: request.luid,
        uuid: request.uuid,
        version: request.version,
        error: request.error,
        seq: wire,
        requestType: request.requestType,
        data: request.data,
      },
    };
    this.#unconfirmed.set(msgId, { op, pending });
    this.stats.published++;
    this.#send(op, msgId);
  }

  /** Publish, with no promise per request where the bus offers `publishQuiet` (PB1). */
  #send(op: Operation, msgId: string): void {
    if (this.#bus.publishQuiet) {
      this.#bus.publishQuiet(op, msgId, (error) => this.#publishFailed(msgId, error));
    } else {
      this.#bus.publish(op, msgId).catch((error) => this.#publishFailed(msgId, error));
    }
  }

  #publishFailed(msgId: string, error: unknown): void {
    const entry = this.#unconfirmed.get(msgId);
    if (!entry) return; // delivered after all
    if (this.#state === "running") {
      // The bus re-publishes after reconnecting (`reconnected`), same msgId (P23).
      this.#log.warn({ err: error, msgId }, "publish failed; will re-publish on reconnection");
      return;
    }
    this.#unconfirmed.delete(msgId);
    if (entry.pending) this.#finish(entry.pending, -errno.EAGAIN, EMPTY, true);
  }

  #republish(): void {
    for (const [msgId, { op }] of [...this.#unconfirmed]) this.#send(op, msgId);
  }

  #ioDone(io: IoRequest, error: number, data?: Uint8Array): void {
    const op: Operation =
      data === undefined
        ? { kind: "io-done", ioId: io.ioId, error }
        : { kind: "io-done", ioId: io.ioId, error, data };
    const msgId = `io:${this.nodeId}:${this.#incarnation}:${io.ioId}`;
    this.#unconfirmed.set(msgId, { op, pending: null });
    this.#send(op, msgId);
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
    if (entry.origin === this.nodeId) {
      const mine = this.#unconfirmed.get(entry.msgId);
      if (mine) {
        this.#unconfirmed.delete(entry.msgId);
        const pending = mine.pending;
        if (pending && !pending.delivered) {
          pending.delivered = true;
          pending.session.undelivered--;
        }
      }
    }
    let replies: Reply[];
    let io: IoRequest[];
    try {
      ({ replies, io } = this.#clusterLog!.apply(entry.op));
    } catch (error) {
      this.#log.error({ err: error, seq: entry.seq }, "cluster log failed to apply an operation");
      return;
    }
    this.stats.applied++;
    for (const listener of this.#appliedListeners) {
      try {
        listener(entry);
      } catch (error) {
        this.#log.error({ err: error, seq: entry.seq }, "applied-operation listener failed");
      }
    }
    // Operations delivered while joining are history (a replay after the snapshot): their
    // replies went out long ago and their I/O was done by whoever it was addressed to —
    // performing it again would write a stale image. Nothing new can be addressed to a
    // joining node: it has no kernel requests and no resumed logs yet.
    if (this.#state === "new") return;
    for (const reply of replies) if (reply.node === this.nodeId) this.#route(reply);
    for (const request of io) if (request.node === this.nodeId) this.#io.enqueue(request);
    if (entry.op.kind === "request" && entry.op.node === this.nodeId) {
      if ((entry.op.request.requestType & 0xff) === DM_ULOG_DTR) this.#releaseDevices();
    }
    const every = this.#options.snapshotEvery ?? 4096;
    if (
      every > 0 &&
      !this.#snapshotScheduled &&
      this.#clusterLog!.position - this.#snapshotPosition >= every
    ) {
      this.#snapshotScheduled = true;
      setImmediate(() => this.#saveSnapshot());
    }
  }

  #route(reply: Reply): void {
    const pending = this.#pending.get(reply.header.seq);
    if (!pending) {
      this.stats.dropped++; // its connection or log is gone (P2): nothing is answered late
      return;
    }
    // Teardown is synchronous (issue 3): before a DTR is answered, every request of that
    // log this replica already applied and has not answered is failed, so nothing of it
    // can be answered after the DTR.
    if (pending.type === DM_ULOG_DTR && reply.error === 0) this.#failLogRequests(pending);
    this.#finish(pending, reply.error, reply.payload, false);
  }

  #failLogRequests(dtr: PendingRequest): void {
    for (const other of [...this.#pending.values()]) {
      if (other === dtr || !other.delivered || other.uuid !== dtr.uuid) continue;
      if (other.luid !== dtr.luid && other.luid !== 0n && dtr.luid !== 0n) continue;
      this.#finish(other, -errno.EIO, EMPTY, true);
    }
  }

  #finish(pending: PendingRequest, error: number, payload: Uint8Array, teardown: boolean): void {
    this.#pending.delete(pending.wire);
    pending.session.inflight--;
    if (!pending.delivered) {
      pending.delivered = true;
      pending.session.undelivered--;
    }
    if (teardown) this.stats.failedByTeardown++;
    this.stats.replies++;
    pending.session.reply(pending.header, error, payload);
    if (this.#pending.size === 0) for (const resolve of this.#drainWaiters.splice(0)) resolve();
  }

  /**
   * A session ends: its in-flight requests are answered with `error` (a close we decide)
   * or released unanswered (the client is gone) — now, before anything else can answer
   * them; replies computed for them later are dropped.
   */
  releaseSession(session: Session, error: number | null): void {
    // The server's map, not one per session: one map operation less per request (PB1);
    // a session ends rarely, and then this walk is over what is in flight.
    const mine: PendingRequest[] = [];
    if (session.inflight > 0)
      for (const p of this.#pending.values()) if (p.session === session) mine.push(p);
    for (const pending of mine) {
      if (error === null) {
        this.#pending.delete(pending.wire);
        session.inflight--;
        const entry = this.#unconfirmed.get(pending.msgId);
        if (entry) entry.pending = null;
        this.stats.abandoned++;
      } else {
        this.#finish(pending, error, EMPTY, true);
      }
    }
    session.undelivered = 0;
    this.#sessions.delete(session);
    if (this.#pending.size === 0) for (const resolve of this.#drainWaiters.splice(0)) resolve();
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
  async publishControl(op: Operation): Promise<number> {
    if (this.#state !== "running") throw new Error("cluster-log server is not running");
    const msgId = `ctl:${this.nodeId}:${this.#incarnation}:${++this.#counter}`;
    this.#unconfirmed.set(msgId, { op, pending: null });
    const seq = await this.#bus.publish(op, msgId);
    while (this.#lastSeq < seq && this.#state === "running") {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return seq;
  }

  /** Save a snapshot through the bus now (the periodic save does the same). */
  saveSnapshot(): void {
    this.#saveSnapshot();
  }

  #saveSnapshot(): void {
    this.#snapshotScheduled = false;
    const log = this.#clusterLog;
    if (!log || this.#state === "closed" || log.position === this.#snapshotPosition) return;
    this.#snapshotPosition = log.position;
    const snapshot = { seq: this.#lastSeq, bytes: log.snapshot() };
    this.stats.snapshots++;
    this.#bus.saveSnapshot(snapshot).catch((error) => {
      this.#log.warn({ err: error }, "saving a snapshot failed");
    });
  }

  /** Wait until nothing of this node is in flight (or `deadline` passes). */
  async #drain(deadline: number): Promise<void> {
    if (this.#pending.size === 0) return;
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
    const listenersClosed = Promise.all(
      this.#listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))),
    );
    for (const session of this.#sessions) session.stopReading();
    const deadline = Date.now() + (options.drainTimeoutMs ?? 5000);
    if (wasRunning) await this.#drain(deadline);
    for (const session of [...this.#sessions]) session.end(-errno.EAGAIN);
    // A hung device must not hold the shutdown forever: its lane closes when it returns.
    await untilDeadline(this.#io.whenIdle(), deadline);
    if (wasRunning) this.#saveSnapshot();
    this.#state = "closed";
    await this.#bus.close().catch((error) => this.#log.warn({ err: error }, "bus close failed"));
    await this.#io.closeAll();
    for (const socket of this.#sockets) socket.destroySoon();
    await listenersClosed;
    this.#log.info({ nodeId: this.nodeId }, "cluster-log server stopped");
  }
}

/** LE u32 at `offset` of a frame (no DataView per frame). */
function u32At(bytes: Uint8Array, offset: number): number {
  return (
    (bytes[offset]! | (bytes[offset + 1]! << 8) | (bytes[offset + 2]! << 16)) +
    bytes[offset + 3]! * 0x100_0000
  );
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

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A socket file left by a dead server is removed; one a live server answers on is refused. */
async function removeStaleSocket(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (live) throw new Error(`another cluster-log server is listening on ${path}`);
  await unlink(path);
}
