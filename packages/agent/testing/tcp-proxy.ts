import { createServer, type Server, Socket } from "node:net";

/**
 * A TCP proxy a test can cut: `down()` drops every connection and refuses new ones (a
 * database that went away, without stopping the shared test server), `stall()` keeps every
 * connection open and accepts new ones but carries no byte either way (a hung server, or a
 * path that silently drops packets), `up()` lets them in again.
 */
export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<[Socket, Socket]>();
  private accepting = true;
  private stalled = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (!this.accepting) {
        client.destroy();
        return;
      }
      this.track(client);
      if (this.stalled) {
        client.on("error", () => {});
        return; // held open, never answered
      }
      const upstream = new Socket();
      this.track(upstream);
      upstream.connect(this.targetPort, this.targetHost);
      client.pipe(upstream).pipe(client);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.on("close", () => this.pairs.delete(pair));
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
  }

  down(): void {
    this.accepting = false;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  /** Every connection stays open and silent; new ones are accepted and never answered. */
  stall(): void {
    this.stalled = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    this.pairs.clear();
  }

  up(): void {
    this.accepting = true;
    this.stalled = false;
  }

  /** `url` with its host and port replaced by the proxy's. */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString();
  }

  async close(): Promise<void> {
    this.down();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
  }
}
