import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { clusterlogBin as bin, startCli } from "../../testing/cli-process.ts";
import { Kernel } from "../../testing/server-harness.ts";
import { readS64, TestClient, text } from "../../testing/uapi-client.ts";

// `mirrorplane-agent clusterlog` as a user runs it: its own process through the bin
// script (tsx), a Unix socket, loopback TCP, a --log-device override, SIGTERM.

const dir = mkdtempSync(join(tmpdir(), "mp-clusterlog-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("mirrorplane-agent clusterlog", () => {
  it("serves the socket and loopback TCP, writes the disk log, and drains on SIGTERM", async () => {
    const socket = join(dir, "clog.sock");
    const logFile = join(dir, "log-7-0");
    writeFileSync(logFile, new Uint8Array(1 << 20));
    const tokenFile = join(dir, "tcp.token");
    writeFileSync(tokenFile, "a-tcp-token-of-32-characters-xxx", { mode: 0o600 });
    const cli = startCli([
      "--socket",
      socket,
      "--data-dir",
      join(dir, "data"),
      "--tcp",
      "127.0.0.1:0",
      "--tcp-token-file",
      tokenFile,
      "--log-device",
      `7:0=${logFile}`,
      "--node-id",
      "3",
    ]);
    const tcpLine = await cli.line(/listening on TCP/);
    const port = JSON.parse(tcpLine).port as number;

    const unix = new Kernel(await TestClient.connect(socket));
    await unix.up("2097152 clustered-disk 7:0 1024 nosync");
    expect((await unix.flush([5])).error).toBe(0);
    expect(await unix.statusInfo()).toBe("3 clustered-disk 7:0 A");

    const tcp = new Kernel(
      await TestClient.connect(
        { host: "127.0.0.1", port },
        { token: "a-tcp-token-of-32-characters-xxx" },
      ),
    );
    const clean = await tcp.send(7, new Uint8Array(new BigUint64Array([5n]).buffer));
    expect(readS64(clean.data)).toBe(0);
    expect(text((await tcp.send(16)).data)).toBe("clustered-disk 7:0 1024 nosync  ");

    const exited = new Promise<number | null>((r) => cli.child.once("exit", (code) => r(code)));
    cli.child.kill("SIGTERM");
    expect(await exited).toBe(0);
    await unix.client.closed;
    expect(cli.lines.some((l) => l.includes("cluster-log server stopped"))).toBe(true);
    expect(existsSync(join(dir, "data", "clusterlog.snapshot"))).toBe(true);
    expect(existsSync(socket)).toBe(false);
  });

  it("refuses a non-loopback --tcp address with exit code 2", () => {
    writeFileSync(join(dir, "tcp.token"), "a-tcp-token-of-32-characters-xxx", { mode: 0o600 });
    const run = spawnSync(
      process.execPath,
      [
        bin,
        "clusterlog",
        "--socket",
        join(dir, "x.sock"),
        "--data-dir",
        join(dir, "x"),
        "--tcp",
        "10.1.2.3:7000",
        "--tcp-token-file",
        join(dir, "tcp.token"),
      ],
      { encoding: "utf8" },
    );
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/loopback/);
  });

  it("refuses --tcp without credentials with exit code 2", () => {
    const run = spawnSync(
      process.execPath,
      [
        bin,
        "clusterlog",
        "--socket",
        join(dir, "z.sock"),
        "--data-dir",
        join(dir, "z"),
        "--tcp",
        "127.0.0.1:0",
      ],
      { encoding: "utf8" },
    );
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/--tcp needs credentials/);
  });

  it("keygen writes a pair once; --nats without keys is refused unless --insecure-unsigned", () => {
    const keys = join(dir, "keys");
    const gen = spawnSync(process.execPath, [bin, "keygen", "--node-id", "7", "--out", keys], {
      encoding: "utf8",
    });
    expect(gen.status).toBe(0);
    expect(statSync(join(keys, "7.key")).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(keys, "7.pub"), "utf8")).toMatch(/BEGIN PUBLIC KEY/);
    const again = spawnSync(process.execPath, [bin, "keygen", "--node-id", "7", "--out", keys], {
      encoding: "utf8",
    });
    expect(again.status).toBe(2); // never replaces a key
    const unsigned = spawnSync(
      process.execPath,
      [
        bin,
        "clusterlog",
        "--socket",
        join(dir, "k.sock"),
        "--data-dir",
        join(dir, "k"),
        "--nats",
        "nats://127.0.0.1:1",
      ],
      { encoding: "utf8" },
    );
    expect(unsigned.status).toBe(2);
    expect(unsigned.stderr).toMatch(/--member-key and --member-keys/);
    const wrongNode = spawnSync(
      process.execPath,
      [
        bin,
        "clusterlog",
        "--socket",
        join(dir, "k.sock"),
        "--data-dir",
        join(dir, "k"),
        "--nats",
        "nats://127.0.0.1:1",
        "--node-id",
        "8",
        "--member-key",
        join(keys, "7.key"),
        "--member-keys",
        keys,
      ],
      { encoding: "utf8" },
    );
    expect(wrongNode.status).toBe(2);
    expect(wrongNode.stderr).toMatch(/do not hold node 8's public key/);
  });

  it("refuses a malformed --nats URL or --cluster name with exit code 2", () => {
    for (const bad of [
      ["--nats", "127.0.0.1:4222"],
      ["--nats", "nats://127.0.0.1:4222", "--cluster", "two words"],
    ]) {
      const run = spawnSync(
        process.execPath,
        [bin, "clusterlog", "--socket", join(dir, "y.sock"), "--data-dir", join(dir, "y"), ...bad],
        { encoding: "utf8" },
      );
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/nats:\/\/host:port|\[A-Za-z0-9_-\]/);
    }
  });
});
