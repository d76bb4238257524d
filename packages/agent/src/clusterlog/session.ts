import { DM_ULOG_HEADER_SIZE, errno, type ReplyForm } from "@mirrorplane/clusterlog";
import { FrameReader, type FrameSink } from "./frame-reader.ts";
import { type ReplyFraming, STREAM_FRAMING } from "./reply-framing.ts";

// One client connection of the cluster-log server, whatever its transport (a stream
// socket, the netlink connector, a simulation's in-memory sink): its input framed and
// handed to the server at most FRAMES_PER_TURN frames a turn, its replies framed by its
// transport's `ReplyFraming` into one output buffer written once per event-loop turn
// (PERF.md PB1), and `Turns`, which runs the end of every turn for all sessions.

/** A session's output buffer starts this large and shrinks back toward it after a burst. */
const OUTPUT_INITIAL = 16 * 1024;

/** What a session needs of the server it feeds (ClusterLogServer). */
export interface SessionHost {
  /** One whole frame, `length` bytes at `at` in `view`: one answer or a close, never a throw. */
  handleFrame(session: Session, view: DataView, at: number, length: number): void;
  /** An error reply built from the raw header (nothing else of the frame need be valid). */
  rejectFrame(session: Session, view: DataView, at: number, error: number, reason: string): void;
  /** The stream cannot be framed: answer what is in flight, then close this connection. */
  protocolClose(session: Session, reason: string): void;
  /** The session ends: its in-flight requests answered with `error`, or released (null). */
  releaseSession(session: Session, error: number | null): void;
  /** The session has output or input left at the end of this turn (`Turns.endOfTurn`). */
  endOfTurn(session: Session): void;
}

/**
 * What a session remembers of its previous request's header, so a run of requests for
 * the same log decodes without a new uuid string or luid BigInt each (PB1).
 */
export interface DecodeCache {
  uuid: string | null;
  /**
   * The uuid's bytes eight at a time, read as LE float64 (whole words only; the rest is
   * compared bytewise): see `sameUuid`.
   */
  uuidWords: Float64Array;
  luidLo: number;
  luidHi: number;
  luid: bigint;
}

/** Where a session's output goes: a socket, or a test's in-memory sink. */
export interface SessionSink {
  /**
   * Send `bytes`. A sink that is done with them once they are written (a socket's write
   * callback) calls `written`, and the session reuses their buffer for a later turn (issue
   * 14: a new buffer per turn was garbage that set off full GCs under a flood); a sink that
   * keeps them never calls it.
   */
  write(bytes: Uint8Array, written?: () => void): void;
  /** Close after the written bytes are out. */
  end(): void;
  /**
   * Input flow control: the session has more input than one turn may take and asks the
   * transport to stop reading (`pauseInput`) until its backlog is served (`resumeInput`).
   */
  pauseInput?(): void;
  resumeInput?(): void;
}

/**
 * Frames one connection's input may hand to the server per event-loop turn (issue 14): the
 * rest waits for the next turn, the socket paused, so a connection that floods the server
 * delays the others' replies by at most one such slice (~0.3 ms of work at ~1 µs a frame)
 * per turn, never by its whole backlog. Well above what a pipelined client at depth 64
 * sends per turn (PB1).
 */
export const FRAMES_PER_TURN = 128;

/**
 * Frames all backlogs together get per turn (issue 14): the slices go round-robin, so
 * however many connections flood, one turn's backlog work stays about four slices
 * (~3-5 ms), and a connection that sends a request now and then is read at once, ahead of
 * every backlog.
 */
export const BACKLOG_FRAMES_PER_TURN = 4 * FRAMES_PER_TURN;

/**
 * One client connection. Holds its in-flight requests (several connections may use the
 * same seqs: each request gets a node-unique wire seq in the ordered stream, and the
 * reply goes back with the client's own seq) and batches its output per event-loop turn.
 */
export class Session implements FrameSink {
  readonly id: number;
  /** Requests of this session published and not yet answered (in the server's list). */
  inflight = 0;
  /** Published requests not yet applied: local answers must wait behind them. */
  undelivered = 0;
  /** The previous request's uuid string and luid, reused while they repeat (PB1). */
  readonly decodeCache: DecodeCache = {
    uuid: null,
    uuidWords: new Float64Array(0),
    luidLo: -1,
    luidHi: -1,
    luid: 0n,
  };
  closed = false;
  readonly #server: SessionHost;
  readonly #sink: SessionSink;
  readonly #reader: FrameReader;
  /** Replies of this event-loop turn, framed back to back: one write per turn (PB1). */
  #out = new Uint8Array(OUTPUT_INITIAL);
  #outView = new DataView(this.#out.buffer);
  #outBytes = 0;
  /** A buffer of an earlier turn the sink is done with (`SessionSink.write`), and its view. */
  #spare: { bytes: Uint8Array<ArrayBuffer>; view: DataView<ArrayBuffer> } | null = null;
  /** An end of turn is scheduled: flush the output, reset the budget, go on with input. */
  #turnScheduled = false;
  /** Frames taken from this connection's input in this turn (FRAMES_PER_TURN). */
  #framesThisTurn = 0;
  readonly #framesPerTurn: number;
  #inputPaused = false;
  /** How this session's transport puts a reply on its wire. */
  readonly #framing: ReplyFraming;

  constructor(
    server: SessionHost,
    id: number,
    sink: SessionSink,
    maxFrameSize?: number,
    framesPerTurn = FRAMES_PER_TURN,
    framing: ReplyFraming = STREAM_FRAMING,
  ) {
    this.#server = server;
    this.#framing = framing;
    this.#framesPerTurn = framesPerTurn;
    this.id = id;
    this.#sink = sink;
    this.#reader = new FrameReader(maxFrameSize === undefined ? {} : { maxFrameSize });
  }

  /** Bytes from the client: at most FRAMES_PER_TURN frames per turn are taken, in order. */
  receive(chunk: Uint8Array): void {
    if (this.closed) return;
    const taken = this.#reader.push(chunk, this, this.#framesPerTurn - this.#framesThisTurn);
    this.#framesThisTurn += taken;
    if (taken > 0 || this.#reader.backlogged) this.#scheduleTurnEnd();
    if (this.#reader.backlogged && !this.#inputPaused && !this.closed) {
      this.#inputPaused = true;
      this.#sink.pauseInput?.();
    }
  }

  #scheduleTurnEnd(): void {
    if (this.#turnScheduled) return;
    this.#turnScheduled = true;
    this.#server.endOfTurn(this);
  }

  /** End of turn, first step (ClusterLogServer.endOfTurn): this turn's replies go out. */
  flushTurn(): void {
    this.#turnScheduled = false;
    this.#framesThisTurn = 0;
    this.#flush();
  }

  /** Input is waiting for a later turn (`continueInput`). */
  get backlogged(): boolean {
    return !this.closed && this.#reader.backlogged;
  }

  /**
   * End of turn, second step: one more slice of a backlog, at most `budget` frames; its
   * replies go out next turn. Returns the frames taken.
   */
  continueInput(budget = this.#framesPerTurn): number {
    if (this.closed || !this.#reader.backlogged) return 0;
    const taken = this.#reader.resume(this, Math.min(budget, this.#framesPerTurn));
    this.#framesThisTurn = taken;
    this.#scheduleTurnEnd();
    if (!this.#reader.backlogged && this.#inputPaused && !this.closed) {
      this.#inputPaused = false;
      this.#sink.resumeInput?.();
    }
    return taken;
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
    this.#server.handleFrame(this, viewOf(bytes), 0, bytes.length);
  }
  frameAt(view: DataView, at: number, length: number): void {
    this.#server.handleFrame(this, view, at, length);
  }
  oversized(header: Uint8Array, length: number): void {
    this.#server.rejectFrame(
      this,
      viewOf(header),
      0,
      -errno.EINVAL,
      `frame of ${length} bytes is too large`,
    );
  }
  fatal(reason: string): void {
    this.#server.protocolClose(this, reason);
  }

  /**
   * Queue a reply to the request whose 160-byte header is at `at` in `view`, in `form`
   * (`replyForm`), with `error` and `payload`; data_size is 0 whenever error ≠ 0 (spec §2
   * preamble). Framed by the transport's framing straight into the session's output
   * buffer: no buffer per reply (PB1).
   */
  reply(view: DataView, at: number, form: ReplyForm, error: number, payload: Uint8Array): void {
    if (this.closed) return;
    const most = this.#framing.overhead + DM_ULOG_HEADER_SIZE + payload.length;
    if (this.#outBytes + most > this.#out.length) this.#grow(most);
    this.#outBytes += this.#framing.write(
      this.#out,
      this.#outView,
      this.#outBytes,
      view,
      at,
      form,
      error,
      payload,
    );
    this.#scheduleTurnEnd();
  }

  #grow(needed: number): void {
    let capacity = this.#out.length * 2;
    while (capacity < this.#outBytes + needed) capacity *= 2;
    const out = new Uint8Array(capacity);
    out.set(this.#out.subarray(0, this.#outBytes));
    this.#out = out;
    this.#outView = new DataView(out.buffer);
  }

  #flush(): void {
    if (this.#outBytes === 0) return;
    // The buffer itself goes to the sink (it keeps it until it is written out), and the
    // next turn writes into the spare one the sink gave back, or a new one: no copy and,
    // while the client reads, no new buffer per turn.
    const used = this.#outBytes;
    const sent = { bytes: this.#out, view: this.#outView };
    this.#outBytes = 0;
    // A busy session keeps the capacity its turns need (growing it again every turn costs
    // copies, PB1); after a burst it shrinks by half per turn that used less than 1/8.
    let capacity = sent.bytes.length;
    if (capacity > OUTPUT_INITIAL && used < capacity >> 3) capacity >>= 1;
    const spare = this.#spare;
    this.#spare = null;
    if (spare && spare.bytes.length === capacity) {
      this.#out = spare.bytes;
      this.#outView = spare.view;
    } else {
      this.#out = new Uint8Array(capacity);
      this.#outView = new DataView(this.#out.buffer);
    }
    this.#sink.write(sent.bytes.subarray(0, used), () => {
      this.#spare = sent;
    });
  }
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The end of every event-loop turn, for all sessions of a server. `session` has replies
 * to send or input left at the end of this turn: one setImmediate for all of them, after
 * the poll phase, not after each read (libuv delivers several reads of one socket in one
 * phase, and their replies go out in one write, PB1). Every session's replies go out
 * before any backlog gets its next slice, so a connection's reply never waits behind
 * another's flood (issue 14).
 */
export class Turns {
  readonly #backlogFramesPerTurn: number;
  #scheduled = false;
  #queue: Session[] = [];
  /** Sessions whose backlog waits for a slice, in turn order (round-robin). */
  #backlogs: Session[] = [];
  readonly #inBacklogs = new Set<Session>();

  constructor(backlogFramesPerTurn = BACKLOG_FRAMES_PER_TURN) {
    this.#backlogFramesPerTurn = backlogFramesPerTurn;
  }

  endOfTurn(session: Session): void {
    this.#queue.push(session);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#run);
  }

  readonly #run = () => {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    for (const session of queue) session.flushTurn();
    for (const session of queue) {
      if (session.backlogged && !this.#inBacklogs.has(session)) {
        this.#inBacklogs.add(session);
        this.#backlogs.push(session);
      }
    }
    // One slice each, from the front, until this turn's backlog budget is spent; a
    // session still backlogged after its slice goes to the back (next turn's queue).
    let budget = this.#backlogFramesPerTurn;
    while (budget > 0 && this.#backlogs.length > 0) {
      const session = this.#backlogs.shift()!;
      this.#inBacklogs.delete(session);
      budget -= Math.max(1, session.continueInput(budget));
    }
    for (const session of this.#backlogs) if (!session.backlogged) this.#inBacklogs.delete(session);
    this.#backlogs = this.#backlogs.filter((session) => this.#inBacklogs.has(session));
    if (this.#backlogs.length > 0) this.#schedule();
  };
}
