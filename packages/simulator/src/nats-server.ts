import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

// A real `nats-server -js` on a free loopback port with its store in a temporary
// directory (the tests, and the demo cluster of `npm start`), which can be killed and restarted on the same port and store (a
// NATS restart mid-stream) and is removed when stopped. Debian's nats-server is
// installed by `.ci/run`; `NATS_SERVER` overrides the binary.

export function natsServerBinary(): string | null {
  const candidates = [process.env.NATS_SERVER, "/usr/sbin/nats-server", "/usr/bin/nats-server"];
  for (const c of candidates) if (c && existsSync(c)) return c;
  return null;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export class NatsServer {
  readonly port: number;
  readonly storeDir: string;
  #child: ChildProcess | null = null;
  #output = "";

  private constructor(port: number, storeDir: string) {
    this.port = port;
    this.storeDir = storeDir;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Server log so far (for failure messages). */
  get output(): string {
    return this.#output;
  }

  static async start(): Promise<NatsServer> {
    const binary = natsServerBinary();
    if (!binary) throw new Error("nats-server not found (apt-get install nats-server)");
    const dir = await mkdtemp(join(tmpdir(), "mirrorplane-nats-"));
    const server = new NatsServer(await freePort(), dir);
    await server.#spawn(binary);
    return server;
  }

  async #spawn(binary = natsServerBinary()!): Promise<void> {
    const child = spawn(
      binary,
      ["-js", "-sd", this.storeDir, "-a", "127.0.0.1", "-p", String(this.port)],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    const collect = (chunk: Buffer) => {
      this.#output += chunk.toString();
      if (this.#output.length > 200_000) this.#output = this.#output.slice(-100_000);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const deadline = Date.now() + 20_000;
    while (!(await canConnect(this.port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited:\n${this.#output}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not listen:\n${this.#output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // JetStream is ready a moment after the port opens.
    const jsDeadline = Date.now() + 20_000;
    while (!this.#output.includes("Server is ready")) {
      if (Date.now() > jsDeadline) throw new Error(`nats-server not ready:\n${this.#output}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Kill the server (SIGKILL unless told otherwise) and wait for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill(signal);
    await exited;
  }

  /**
   * Stop and start again on the same port and store. With SIGTERM the server flushes its
   * store and every acknowledged message survives; a single server killed with SIGKILL
   * loses what it had not yet written out (nats-server 2.9 has no sync_interval), which is
   * why production runs an R3 stream on a NATS cluster.
   */
  async restart(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.kill(signal);
    this.#output = "";
    await this.#spawn();
  }

  async stop(): Promise<void> {
    await this.kill("SIGTERM");
    await rm(this.storeDir, { recursive: true, force: true });
  }
}
