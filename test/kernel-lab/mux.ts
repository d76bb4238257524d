import { connect, createServer, type Server, type Socket } from "node:net";

// TCP over one virtio-serial port (KERNEL-LAB.md: only loopback addresses; no guest
// networking). A guest has no network at all: programs in it connect to the guest's own
// 127.0.0.1, the guest half of this multiplexer carries each connection as frames over one
// virtio-serial port, and the host half opens the matching connection to this machine's
// 127.0.0.1. Many connections (an agent's NATS and Postgres, reconnections after a NATS
// server restart) share the one port, which a plain `socat` per port cannot do: a byte
// stream has no way to say "that connection ended, this is a new one".
//
// Frame: type u8 | connection u32 LE | length u32 LE | payload.
//   OPEN  payload = the guest port connected to (u16 LE): the host connects to its mapping.
//   DATA  payload = bytes of that connection, either way.
//   CLOSE payload empty: that side ended the connection.

const OPEN = 1;
const DATA = 2;
const CLOSE = 3;
const HEADER = 9;
/** Larger writes are split so one busy connection does not hold the port for long. */
const MAX_PAYLOAD = 64 * 1024;

interface Duplex {
  write(bytes: Uint8Array): boolean;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
}

/** Reads frames from a byte stream. */
class FrameParser {
  #buffer: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (type: number, conn: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let at = 0;
    while (this.#buffer.length - at >= HEADER) {
      const length = this.#buffer.readUInt32LE(at + 5);
      if (this.#buffer.length - at < HEADER + length) break;
      const type = this.#buffer.readUInt8(at);
      const conn = this.#buffer.readUInt32LE(at + 1);
      this.onFrame(type, conn, this.#buffer.subarray(at + HEADER, at + HEADER + length));
      at += HEADER + length;
    }
    this.#buffer = this.#buffer.subarray(at);
  }
}

function frame(type: number, conn: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const out = Buffer.allocUnsafe(HEADER + payload.length);
  out.writeUInt8(type, 0);
  out.writeUInt32LE(conn, 1);
  out.writeUInt32LE(payload.length, 5);
  out.set(payload, HEADER);
  return out;
}

function sendData(port: Duplex, conn: number, chunk: Buffer): void {
  for (let at = 0; at < chunk.length; at += MAX_PAYLOAD) {
    port.write(frame(DATA, conn, chunk.subarray(at, at + MAX_PAYLOAD)));
  }
}

/**
 * The host half: `port` is the virtio-serial chardev (QEMU's Unix socket); each OPEN from
 * the guest connects to `127.0.0.1:<targets[guest port]>`.
 */
export function serveHostMux(
  port: Socket,
  targets: ReadonlyMap<number, number>,
  log: (line: string) => void = () => {},
): { close(): void } {
  const connections = new Map<number, Socket>();
  const parser = new FrameParser((type, conn, payload) => {
    if (type === OPEN) {
      const guestPort = payload.readUInt16LE(0);
      const target = targets.get(guestPort);
      if (target === undefined) {
        log(`mux: no host target for guest port ${guestPort}`);
        port.write(frame(CLOSE, conn));
        return;
      }
      const socket = connect({ host: "127.0.0.1", port: target });
      socket.setNoDelay(true);
      connections.set(conn, socket);
      socket.on("data", (chunk) => sendData(port, conn, chunk));
      socket.on("error", () => {});
      socket.on("close", () => {
        if (connections.delete(conn)) port.write(frame(CLOSE, conn));
      });
    } else if (type === DATA) {
      connections.get(conn)?.write(payload);
    } else if (type === CLOSE) {
      const socket = connections.get(conn);
      connections.delete(conn);
      socket?.end();
    }
  });
  port.on("data", (chunk) => parser.push(chunk));
  const closeAll = () => {
    for (const socket of connections.values()) socket.destroy();
    connections.clear();
  };
  port.on("close", closeAll);
  port.on("error", () => {});
  return {
    close: () => {
      closeAll();
      port.destroy();
    },
  };
}

/**
 * The guest half: listens on the guest's 127.0.0.1 at each of `ports` and carries every
 * connection over `port` (the opened virtio-serial device).
 */
export function serveGuestMux(port: Duplex, ports: readonly number[]): Promise<Server[]> {
  const connections = new Map<number, Socket>();
  let next = 1;
  const parser = new FrameParser((type, conn, payload) => {
    const socket = connections.get(conn);
    if (!socket) return;
    if (type === DATA) socket.write(payload);
    else if (type === CLOSE) {
      connections.delete(conn);
      socket.end();
    }
  });
  port.on("data", (chunk) => parser.push(chunk));
  return Promise.all(
    ports.map(
      (listenPort) =>
        new Promise<Server>((resolve, reject) => {
          const server = createServer({ noDelay: true }, (socket) => {
            const conn = next++;
            connections.set(conn, socket);
            const open = Buffer.alloc(2);
            open.writeUInt16LE(listenPort, 0);
            port.write(frame(OPEN, conn, open));
            socket.on("data", (chunk) => sendData(port, conn, chunk));
            socket.on("error", () => {});
            socket.on("close", () => {
              if (connections.delete(conn)) port.write(frame(CLOSE, conn));
            });
          });
          server.once("error", reject);
          server.listen(listenPort, "127.0.0.1", () => resolve(server));
        }),
    ),
  );
}
