import { chmod, lstat, unlink } from "node:fs/promises";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer } from "node:tls";
import type { Logger } from "pino";
import { RateLimitedLog } from "./rate-limited-log.ts";
import type { ClusterLogServer } from "./server.ts";
import { awaitTokenPreamble } from "./tcp-auth.ts";

// The stream-socket transport of the cluster-log server (CLUSTERLOG-SERVER.md §1): a Unix
// socket (root only), or loopback TCP behind a credential (issue 15); each connection a
// session whose frames go to the server and whose replies come back length-prefixed
// (STREAM_FRAMING). Reading pauses while the client leaves our output unread or its input
// waits for later turns.

/** Reading pauses while a client leaves this much of our output unread. */
const OUTPUT_HIGH_WATER = 1 << 20;

/** The TCP listener's credentials (at least one). */
export interface TcpAuth {
  /** The token a client must send first, read per connection (a rotated file applies). */
  readonly token?: () => Promise<Uint8Array>;
  /** Mutual TLS: the server's certificate and key, and the CA client certificates chain to. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer };
}

export class StreamTransport {
  readonly #server: ClusterLogServer;
  readonly #log: Logger;
  readonly #listeners: Server[] = [];
  readonly #sockets = new Set<Socket>();
  /** Refused TCP clients: one line per reason a minute at most, with the count (issue 15). */
  readonly #refusals: RateLimitedLog;

  constructor(server: ClusterLogServer, log: Logger) {
    this.#server = server;
    this.#log = log;
    this.#refusals = new RateLimitedLog(log);
  }

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

  /**
   * Listen on loopback TCP; returns the bound port. Refused without a credential (issue
   * 15: the server is root and a CTR writes the device it names): a token the client sends
   * first (tcp-auth.ts), mutual TLS, or both.
   */
  async listenTcp(host: string, port: number, auth: TcpAuth): Promise<number> {
    if (!isLoopback(host)) throw new Error(`--tcp must be a loopback address, not ${host}`);
    if (!auth.token && !auth.tls) {
      throw new Error(
        "--tcp needs credentials: --tcp-token-file, or --tcp-tls-cert/--tcp-tls-key/--tcp-tls-ca",
      );
    }
    const server = auth.tls ? this.#tlsServer(auth, host) : this.#netServer(auth);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    const bound = typeof address === "object" && address ? address.port : port;
    this.#log.info(
      { host, port: bound, token: Boolean(auth.token), mutualTls: Boolean(auth.tls) },
      "cluster-log server listening on TCP",
    );
    return bound;
  }

  #tlsServer(auth: TcpAuth, host: string): Server {
    const tls = auth.tls!;
    const server = createTlsServer(
      {
        cert: tls.cert,
        key: tls.key,
        ca: tls.ca,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
      },
      (socket) => this.#authenticate(socket, auth),
    );
    server.on("tlsClientError", (error, socket) => {
      this.#server.stats.authRefused++;
      this.#refusals.warn(
        { remote: socket.remoteAddress, port: socket.remotePort, reason: error.message, host },
        "TCP client refused: TLS handshake failed",
      );
    });
    server.on("error", (error) => this.#log.error({ err: error }, "listener error"));
    this.#listeners.push(server);
    return server;
  }

  /** A client of the TCP listener: its credential checked before a session exists. */
  #authenticate(socket: Socket, auth: TcpAuth): void {
    if (!this.#server.running) {
      socket.destroy();
      return;
    }
    if (!auth.token) {
      this.#accept(socket);
      return;
    }
    socket.on("error", () => {});
    awaitTokenPreamble(socket, auth.token).then((outcome) => {
      if (!outcome.ok) {
        this.#server.stats.authRefused++;
        this.#refusals.warn(
          { remote: socket.remoteAddress, port: socket.remotePort, reason: outcome.reason },
          `TCP client refused: ${outcome.reason}`,
        );
        return;
      }
      if (socket.destroyed || !this.#server.running) {
        socket.destroy();
        return;
      }
      // #accept resumes the paused socket unless its first bytes already fill a turn.
      this.#accept(socket, outcome.rest);
    });
  }

  #netServer(auth?: TcpAuth): Server {
    const server = createServer({ noDelay: true }, (socket) =>
      auth ? this.#authenticate(socket, auth) : this.#accept(socket),
    );
    server.on("error", (error) => this.#log.error({ err: error }, "listener error"));
    this.#listeners.push(server);
    return server;
  }

  #accept(socket: Socket, first?: Buffer): void {
    if (!this.#server.running) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.setNoDelay?.(true);
    // Reading stops while the client leaves our output unread, or while its input waits
    // for later turns (FRAMES_PER_TURN); it goes on when neither holds.
    let outputFull = false;
    let inputBacklog = false;
    const flow = () => {
      if (outputFull || inputBacklog) socket.pause();
      else if (!session.closed) socket.resume();
    };
    const session = this.#server.openSession({
      write: (bytes, written) => {
        if (socket.destroyed) return;
        // Its callback: the bytes are out (or the write failed), the buffer is free.
        socket.write(bytes, written);
        if (socket.writableLength > OUTPUT_HIGH_WATER && !outputFull) {
          outputFull = true;
          flow();
          socket.once("drain", () => {
            outputFull = false;
            flow();
          });
        }
      },
      end: () => {
        if (!socket.destroyed) socket.end();
      },
      pauseInput: () => {
        inputBacklog = true;
        flow();
      },
      resumeInput: () => {
        inputBacklog = false;
        flow();
      },
    });
    if (first && first.length > 0) session.receive(first);
    socket.on("data", (chunk) => session.receive(chunk));
    flow();
    socket.on("error", (error) =>
      this.#log.debug({ session: session.id, err: error }, "socket error"),
    );
    socket.on("close", () => {
      this.#sockets.delete(socket);
      session.lost();
      this.#log.debug({ session: session.id }, "connection closed");
    });
  }

  /** Stop accepting; resolves once every listener has closed (`destroyConnections` first). */
  closeListeners(): Promise<void> {
    return Promise.all(
      this.#listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve()))),
    ).then(() => {});
  }

  /** Close what is left of the connections once their replies are written. */
  destroyConnections(): void {
    for (const socket of this.#sockets) socket.destroySoon();
  }
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
