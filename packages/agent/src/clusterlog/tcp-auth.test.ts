import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { Kernel } from "../../testing/server-harness.ts";
import { ascii, buildRequest, TestClient, withLength } from "../../testing/uapi-client.ts";
import { type RunningClusterLog, startClusterLogCommand } from "./command.ts";

// Issue 15, hole 1: any local user could reach the root cluster-log server over `--tcp`
// and CTR a clustered-disk log on a device it then overwrites. These tests repeat that
// attack on a log "device" (a file standing in for /dev/loop0 through --log-device) and
// check that only a client with the credential gets to write it.

const dir = mkdtempSync(join(tmpdir(), "mp-tcp-auth-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOKEN = "s3cret-token-of-32-characters-xx";
const CTR_ARGS = "2048 clustered-disk 7:0 1024 nosync";

let running: RunningClusterLog | null = null;
let lines: string[] = [];
afterEach(async () => {
  await running?.stop();
  running = null;
});

function device(name: string): string {
  const path = join(dir, name);
  // A recognisable pattern: a log header written over it would replace it.
  writeFileSync(path, Buffer.alloc(1 << 20, 0xa5));
  return path;
}

async function start(name: string, extra: Record<string, string>): Promise<RunningClusterLog> {
  lines = [];
  const log = pino({ level: "info" }, { write: (l: string) => lines.push(l) });
  running = await startClusterLogCommand(
    {
      socket: join(dir, `${name}.sock`),
      dataDir: join(dir, `${name}-data`),
      tcp: "127.0.0.1:0",
      logDevice: [`7:0=${join(dir, `${name}.dev`)}`],
      connector: "off",
      rearm: "off",
      ...extra,
    },
    log,
  );
  return running;
}

function tokenFile(name: string, token = TOKEN, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, `${token}\n`);
  chmodSync(path, mode);
  return path;
}

/** The attacker: raw CTR then RESUME frames, no credential; resolves with what came back. */
function unauthenticatedCtr(port: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const got: Buffer[] = [];
    socket.on("data", (c) => got.push(c));
    socket.on("error", () => {});
    socket.on("close", () => resolve(Buffer.concat(got)));
    socket.on("connect", () => {
      socket.write(withLength(buildRequest({ type: 1, seq: 1, data: ascii(CTR_ARGS) })));
      socket.write(withLength(buildRequest({ type: 5, seq: 2 })));
    });
  });
}

const untouched = (path: string) =>
  readFileSync(path).every((b) => b === 0xa5) ? "untouched" : "overwritten";

describe("the cluster-log TCP listener (issue 15)", () => {
  it("refuses to start without credentials, with a world-readable token file, or half a TLS setup", async () => {
    await expect(start("none", {})).rejects.toThrow(/--tcp needs credentials/);
    await expect(
      start("loose", { tcpTokenFile: tokenFile("loose.token", TOKEN, 0o644) }),
    ).rejects.toThrow(/readable by group or others/);
    await expect(start("short", { tcpTokenFile: tokenFile("short.token", "abc") })).rejects.toThrow(
      /16-1024 bytes/,
    );
    await expect(start("half", { tcpTlsCert: join(dir, "x.pem") })).rejects.toThrow(
      /all of --tcp-tls-cert/,
    );
  });

  it("with a token: an unauthenticated CTR is refused and the device untouched; a wrong token refused; the right one works", async () => {
    const dev = device("tok.dev");
    const server = await start("tok", { tcpTokenFile: tokenFile("tok.token") });
    const port = server.tcpPort!;

    const answer = await unauthenticatedCtr(port);
    // No dm_ulog reply (a 160-byte header) came back: only the -EACCES refusal frame.
    expect(answer.length).toBe(16);
    expect(answer.readInt32LE(12)).toBe(-13);
    expect(untouched(dev)).toBe("untouched");
    expect(server.server.clusterLog.state.instances.size).toBe(0);

    await expect(
      TestClient.connect(
        { host: "127.0.0.1", port },
        { token: "wrong-token-of-32-characters-xxx" },
      ),
    ).rejects.toThrow(/refused the credentials/);
    await expect(
      TestClient.connect({ host: "127.0.0.1", port }, { token: TOKEN.slice(0, -1) }),
    ).rejects.toThrow(/refused/);
    expect(untouched(dev)).toBe("untouched");
    expect(server.server.stats.authRefused).toBe(3);
    // Refusals are logged, one line per reason in a minute (an attacker cannot flood the log).
    const refusals = lines.filter((l) => l.includes("TCP client refused"));
    expect(refusals.length).toBe(2); // "not an authentication preamble", "wrong token"
    expect(refusals.join("\n")).toMatch(/wrong token/);

    const kernel = new Kernel(
      await TestClient.connect({ host: "127.0.0.1", port }, { token: TOKEN }),
    );
    await kernel.up(CTR_ARGS);
    expect((await kernel.flush([1])).error).toBe(0);
    expect(untouched(dev)).toBe("overwritten"); // the authenticated client writes its log
    await kernel.client.end();
  });

  it("a rotated token file applies to the next connection", async () => {
    const path = tokenFile("rot.token");
    const server = await start("rot", { tcpTokenFile: path });
    const next = "the-rotated-token-of-32-chars-xx";
    writeFileSync(path, next);
    await expect(
      TestClient.connect({ host: "127.0.0.1", port: server.tcpPort! }, { token: TOKEN }),
    ).rejects.toThrow(/refused/);
    const client = await TestClient.connect(
      { host: "127.0.0.1", port: server.tcpPort! },
      { token: next },
    );
    expect((await client.send(15)).error).not.toBe(-13);
    await client.end();
  });

  it("with mutual TLS: a client without a certificate of the CA is refused; one with it works", async () => {
    const tls = certificates();
    const dev = device("tls.dev");
    const server = await start("tls", {
      tcpTlsCert: tls.serverCert,
      tcpTlsKey: tls.serverKey,
      tcpTlsCa: tls.caCert,
    });
    const port = server.tcpPort!;
    const ca = readFileSync(tls.caCert);
    const rogue = await TestClient.connect(
      { host: "127.0.0.1", port },
      {
        tls: {
          cert: readFileSync(tls.rogueCert),
          key: readFileSync(tls.rogueKey),
          ca,
          servername: "localhost",
        },
      },
    ).catch(() => null);
    if (rogue) {
      // TLS 1.3 reports a rejected client certificate after the client's handshake.
      rogue.post(1, ascii(CTR_ARGS));
      rogue.post(5);
      await rogue.closed;
      expect(rogue.received.length).toBe(0);
    }
    expect(server.server.stats.authRefused).toBeGreaterThanOrEqual(1);
    expect(untouched(dev)).toBe("untouched");
    const kernel = new Kernel(
      await TestClient.connect(
        { host: "127.0.0.1", port },
        {
          tls: {
            cert: readFileSync(tls.clientCert),
            key: readFileSync(tls.clientKey),
            ca,
            servername: "localhost",
          },
        },
      ),
    );
    await kernel.up(CTR_ARGS);
    expect(untouched(dev)).toBe("overwritten");
    await kernel.client.end();
  });
});

/** A CA, a server and a client certificate of it, and a client certificate of another CA. */
function certificates() {
  const at = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  for (const ca of ["ca", "rogue-ca"]) {
    ssl(
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${ca}`,
      "-keyout",
      at(`${ca}.key`),
      "-out",
      at(`${ca}.pem`),
    );
  }
  const issue = (name: string, ca: string, ext: string) => {
    ssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      `/CN=${name}`,
      "-keyout",
      at(`${name}.key`),
      "-out",
      at(`${name}.csr`),
    );
    writeFileSync(at(`${name}.ext`), ext);
    ssl(
      "x509",
      "-req",
      "-in",
      at(`${name}.csr`),
      "-CA",
      at(`${ca}.pem`),
      "-CAkey",
      at(`${ca}.key`),
      "-CAcreateserial",
      "-days",
      "2",
      "-extfile",
      at(`${name}.ext`),
      "-out",
      at(`${name}.pem`),
    );
  };
  issue("server", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  issue("client", "ca", "extendedKeyUsage=clientAuth\n");
  issue("rogue", "rogue-ca", "extendedKeyUsage=clientAuth\n");
  return {
    caCert: at("ca.pem"),
    serverCert: at("server.pem"),
    serverKey: at("server.key"),
    clientCert: at("client.pem"),
    clientKey: at("client.key"),
    rogueCert: at("rogue.pem"),
    rogueKey: at("rogue.key"),
  };
}
