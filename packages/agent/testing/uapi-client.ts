import { createConnection, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { sendTokenPreamble } from "../src/clusterlog/tcp-auth.ts";

// Test support: a client that speaks the local transport the way a kernel-side program
// built on the uapi header would — it lays out `struct dm_ulog_request` byte by byte at
// the offsets of include/uapi/linux/dm-log-userspace.h (spec §1.2) and does not use the
// core's codec, so the tests check the server against the header, not against itself.

export const HEADER_SIZE = 160;

export interface WireRequest {
  readonly type: number;
  readonly seq: number;
  readonly uuid?: string;
  readonly luid?: bigint;
  readonly version?: number;
  readonly data?: Uint8Array;
  /** Raw request_type override (upper bits, type 0…). */
  readonly rawType?: number;
}

export interface WireReply {
  /** The whole frame after the length prefix. */
  readonly bytes: Uint8Array;
  readonly luid: bigint;
  readonly uuid: string;
  readonly version: number;
  readonly error: number;
  readonly seq: number;
  readonly requestType: number;
  readonly dataSize: number;
  readonly data: Uint8Array;
}

/** `struct dm_ulog_request` + payload. */
export function buildRequest(req: WireRequest): Uint8Array {
  const data = req.data ?? new Uint8Array(0);
  const bytes = new Uint8Array(HEADER_SIZE + data.length);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, req.luid ?? 0x1111n, true); // u64 luid
  const uuid = req.uuid ?? "LVM-test";
  for (let i = 0; i < uuid.length; i++) bytes[8 + i] = uuid.charCodeAt(i); // char uuid[129]
  // 137..139: char padding[3] = 0
  view.setUint32(140, req.version ?? 3, true); // u32 version
  view.setInt32(144, 0, true); // s32 error
  view.setUint32(148, req.seq, true); // u32 seq
  view.setUint32(152, req.rawType ?? req.type, true); // u32 request_type
  view.setUint32(156, data.length, true); // u32 data_size
  bytes.set(data, HEADER_SIZE);
  return bytes;
}

export function withLength(message: Uint8Array, length = message.length): Uint8Array {
  const bytes = new Uint8Array(4 + message.length);
  new DataView(bytes.buffer).setUint32(0, length, true);
  bytes.set(message, 4);
  return bytes;
}

export function parseReply(bytes: Uint8Array): WireReply {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let uuid = "";
  for (let i = 8; i < 137 && bytes[i] !== 0; i++) uuid += String.fromCharCode(bytes[i]!);
  const dataSize = view.getUint32(156, true);
  return {
    bytes,
    luid: view.getBigUint64(0, true),
    uuid,
    version: view.getUint32(140, true),
    error: view.getInt32(144, true),
    seq: view.getUint32(148, true),
    requestType: view.getUint32(152, true),
    dataSize,
    data: bytes.slice(HEADER_SIZE, HEADER_SIZE + dataSize),
  };
}

export const u64 = (...values: (number | bigint)[]): Uint8Array => {
  const bytes = new Uint8Array(values.length * 8);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => {
    view.setBigUint64(i * 8, BigInt(v), true);
  });
  return bytes;
};
export const ascii = (text: string, nul = false): Uint8Array =>
  new Uint8Array([...text].map((c) => c.charCodeAt(0)).concat(nul ? [0] : []));
export const readU64 = (data: Uint8Array, at = 0): number =>
  Number(new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(at, true));
export const readS64 = (data: Uint8Array, at = 0): number =>
  Number(new DataView(data.buffer, data.byteOffset, data.byteLength).getBigInt64(at, true));
export const text = (data: Uint8Array): string => String.fromCharCode(...data);

/** What a TCP client presents (tcp-auth.ts). */
export interface TcpCredentials {
  readonly token?: string | Uint8Array;
  readonly tls?: {
    readonly cert: Buffer | string;
    readonly key: Buffer | string;
    readonly ca: Buffer | string;
    readonly servername?: string;
  };
}

/** A connection to the server: send requests, await replies matched by seq. */
export class TestClient {
  readonly socket: Socket;
  /** Every reply frame received, in order. */
  readonly received: WireReply[] = [];
  #buffer = new Uint8Array(0);
  #waiters = new Map<number, ((r: WireReply) => void)[]>();
  #unclaimed = new Map<number, WireReply[]>();
  #closed: Promise<void>;
  nextSeq = 1;
  uuid = "LVM-test";
  luid = 0x1111n;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    this.#closed = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.on("error", () => {});
  }

  /**
   * Connects to the Unix socket `path`, or to the TCP listener with its credentials: the
   * token preamble (tcp-auth.ts) and/or a client certificate for mutual TLS.
   */
  static async connect(
    path: string | { host: string; port: number },
    credentials: TcpCredentials = {},
  ): Promise<TestClient> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s =
        typeof path === "string"
          ? createConnection(path)
          : credentials.tls
            ? tlsConnect({ host: path.host, port: path.port, ...credentials.tls })
            : createConnection(path.port, path.host);
      s.once(credentials.tls && typeof path !== "string" ? "secureConnect" : "connect", () =>
        resolve(s),
      );
      s.once("error", reject);
    });
    let rest: Buffer | null = null;
    if (credentials.token !== undefined) {
      try {
        rest = await sendTokenPreamble(socket, credentials.token);
      } catch (error) {
        socket.destroy();
        throw error;
      }
    }
    const client = new TestClient(socket);
    if (rest && rest.length > 0) client.#onData(rest);
    socket.resume();
    return client;
  }

  get closed(): Promise<void> {
    return this.#closed;
  }

  #onData(chunk: Buffer): void {
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer, 0);
    joined.set(chunk, this.#buffer.length);
    let off = 0;
    const view = new DataView(joined.buffer);
    while (joined.length - off >= 4) {
      const length = view.getUint32(off, true);
      if (joined.length - off - 4 < length) break;
      const reply = parseReply(joined.slice(off + 4, off + 4 + length));
      off += 4 + length;
      this.received.push(reply);
      const waiters = this.#waiters.get(reply.seq);
      const waiter = waiters?.shift();
      if (waiter) waiter(reply);
      else {
        const list = this.#unclaimed.get(reply.seq) ?? [];
        list.push(reply);
        this.#unclaimed.set(reply.seq, list);
      }
    }
    this.#buffer = joined.slice(off);
  }

  /** The next reply carrying `seq`. */
  reply(seq: number): Promise<WireReply> {
    const unclaimed = this.#unclaimed.get(seq);
    if (unclaimed?.length) return Promise.resolve(unclaimed.shift()!);
    return new Promise((resolve) => {
      const list = this.#waiters.get(seq) ?? [];
      list.push(resolve);
      this.#waiters.set(seq, list);
    });
  }

  write(bytes: Uint8Array): void {
    this.socket.write(bytes);
  }

  /** Send one request (not awaiting); returns its seq. */
  post(type: number, data?: Uint8Array, opts: Partial<WireRequest> = {}): number {
    const seq = opts.seq ?? this.nextSeq++;
    const frame = withLength(
      buildRequest({
        uuid: this.uuid,
        luid: this.luid,
        ...opts,
        type,
        seq,
        ...(data ? { data } : {}),
      }),
    );
    this.write(frame);
    return seq;
  }

  async send(type: number, data?: Uint8Array, opts: Partial<WireRequest> = {}): Promise<WireReply> {
    return this.reply(this.post(type, data, opts));
  }

  end(): Promise<void> {
    this.socket.end();
    return this.#closed;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
