import { createConnection, type Socket } from "node:net";

// How a simulated kernel reaches its local agent: the local stream transport (4-byte LE
// length + dm_ulog_request, ARCHITECTURE.md "Transports"), which carries exactly the
// requests and replies the netlink connector carries. "Connected" plays the role of
// "someone is subscribed to connector group 7": without it the kernel's send fails with
// -ESRCH (CLUSTERLOG-SPEC.md §1.1, §1.5).

export interface UlogLink {
  readonly connected: boolean;
  /** Try to reach the server; false = nobody is listening (the kernel's -ESRCH). */
  connect(): Promise<boolean>;
  /** Send one dm_ulog_request; false when not connected (-ESRCH). */
  send(request: Uint8Array): boolean;
  /** Every reply frame (a dm_ulog_request header + payload). */
  onReply: ((reply: Uint8Array) => void) | null;
  close(): void;
}

export class SocketUlogLink implements UlogLink {
  onReply: ((reply: Uint8Array) => void) | null = null;
  #socket: Socket | null = null;
  #connecting: Promise<boolean> | null = null;
  #buffer = new Uint8Array(0);
  #closed = false;

  constructor(readonly path: string) {}

  get connected(): boolean {
    return this.#socket !== null;
  }

  connect(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#socket) return Promise.resolve(true);
    this.#connecting ??= new Promise<boolean>((resolve) => {
      const socket = createConnection(this.path);
      socket.setNoDelay?.(true);
      socket.once("connect", () => {
        this.#connecting = null;
        if (this.#closed) {
          socket.destroy();
          resolve(false);
          return;
        }
        this.#socket = socket;
        this.#buffer = new Uint8Array(0);
        socket.on("data", (chunk: Buffer) => this.#data(chunk));
        socket.once("close", () => {
          if (this.#socket === socket) this.#socket = null;
        });
        resolve(true);
      });
      socket.once("error", () => {
        this.#connecting = null;
        if (this.#socket === socket) this.#socket = null;
        socket.destroy();
        resolve(false);
      });
    });
    return this.#connecting;
  }

  send(request: Uint8Array): boolean {
    const socket = this.#socket;
    if (!socket || socket.destroyed) return false;
    const frame = new Uint8Array(4 + request.length);
    new DataView(frame.buffer).setUint32(0, request.length, true);
    frame.set(request, 4);
    socket.write(frame);
    return true;
  }

  #data(chunk: Buffer): void {
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer, 0);
    joined.set(chunk, this.#buffer.length);
    const view = new DataView(joined.buffer);
    let off = 0;
    while (joined.length - off >= 4) {
      const length = view.getUint32(off, true);
      if (joined.length - off - 4 < length) break;
      this.onReply?.(joined.slice(off + 4, off + 4 + length));
      off += 4 + length;
    }
    this.#buffer = joined.slice(off);
  }

  close(): void {
    this.#closed = true;
    this.#socket?.destroy();
    this.#socket = null;
  }
}
