import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadNetlink } from "@mirrorplane/netlink";
import { afterAll, describe, expect, it } from "vitest";
import { Kernel } from "../../testing/server-harness.ts";
import { TestClient } from "../../testing/uapi-client.ts";

// `mirrorplane-agent clusterlog` and the kernel bridge, as processes: as root it serves
// the connector (group 7) beside the socket; as an unprivileged user it says in one line
// why it cannot, and still serves the socket.

const bin = resolve(import.meta.dirname, "../../bin/mirrorplane-agent.js");
const dir = mkdtempSync(join(tmpdir(), "mp-connector-cli-"));
chmodSync(dir, 0o777);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

async function run(name: string, extra: string[], uid?: number) {
  const socket = join(dir, `${name}.sock`);
  const child = spawn(
    process.execPath,
    [
      bin,
      "clusterlog",
      "--socket",
      socket,
      "--data-dir",
      join(dir, name),
      // Never this host's real lock (/run/mirrorplane/connector.lock) unless a test says so.
      ...(extra.includes("--connector-lock")
        ? []
        : ["--connector-lock", join(dir, `${name}.lock`)]),
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"], ...(uid === undefined ? {} : { uid, gid: uid }) },
  );
  const lines: string[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  let partial = "";
  const listening = new Promise<void>((resolveListening, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      partial += chunk.toString();
      const parts = partial.split("\n");
      partial = parts.pop()!;
      lines.push(...parts);
      if (parts.some((l) => l.includes("cluster-log server listening"))) resolveListening();
    });
    child.once("exit", (code) =>
      setImmediate(() => reject(new Error(`exited ${code}: ${stderr}${lines.join("\n")}`))),
    );
  });
  await listening;
  // The connector is tried right after the socket listens: give that line time to appear.
  const kernel = new Kernel(await TestClient.connect(socket));
  await kernel.up("4096 clustered-core 1024");
  const stop = async () => {
    kernel.client.destroy();
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
    child.kill("SIGTERM");
    return exited;
  };
  return { child, lines, stop };
}

describe.runIf(isRoot && loadNetlink().ok)("the clusterlog command and the connector", () => {
  it("as root serves the netlink connector beside the socket", async () => {
    const cli = await run("root", []);
    expect(cli.lines.some((l) => l.includes("netlink connector: serving dm-log-userspace"))).toBe(
      true,
    );
    expect(await cli.stop()).toBe(0);
  });

  it("unprivileged: one clear line, and the socket is still served", async () => {
    const cli = await run("nobody", [], 65534);
    const line = cli.lines.find((l) => l.includes("netlink connector unavailable"));
    expect(line).toBeDefined();
    expect(JSON.parse(line!).reason).toMatch(/CAP_SYS_ADMIN/);
    expect(await cli.stop()).toBe(0);
  });

  it("--connector on refuses to start unprivileged", async () => {
    await expect(run("strict", ["--connector", "on"], 65534)).rejects.toThrow(/exited 2/);
  });
});

// One connector server per host (issue 14): the flock on --connector-lock is taken before
// group 7 is joined and held while serving; the kernel drops it with its holder.
describe.runIf(isRoot && loadNetlink().ok)("one connector server per host", () => {
  const lock = join(dir, "run", "connector.lock");
  const withLock = (mode: string) => ["--connector", mode, "--connector-lock", lock];
  const serving = (lines: string[]) =>
    lines.some((l) => l.includes("netlink connector: serving dm-log-userspace"));

  it("a second agent is refused with exit 3 (on) or serves its socket only (auto)", async () => {
    const first = await run("first", withLock("on"));
    expect(serving(first.lines)).toBe(true);

    const refused = await run("second", withLock("on")).then(
      () => "started",
      (error: Error) => error.message,
    );
    expect(refused).toMatch(/^exited 3: /);
    expect(refused).toContain(
      `mirrorplane-agent clusterlog: netlink connector unavailable: another connector server holds ${lock} (pid ${first.child.pid}); refusing to start (--connector on)`,
    );

    const auto = await run("third", withLock("auto"));
    expect(serving(auto.lines)).toBe(false);
    const line = auto.lines.find((l) => l.includes("serving the local socket only"));
    expect(JSON.parse(line!).reason).toBe(
      `another connector server holds ${lock} (pid ${first.child.pid})`,
    );
    expect(await auto.stop()).toBe(0);
    expect(await first.stop()).toBe(0);

    // Stopped: the lock is free again.
    const after = await run("after-stop", withLock("on"));
    expect(serving(after.lines)).toBe(true);
    expect(await after.stop()).toBe(0);
  });

  it("a holder killed with SIGKILL leaves no stale lock: the next agent takes it", async () => {
    const first = await run("killed", withLock("on"));
    expect(serving(first.lines)).toBe(true);
    const gone = new Promise((r) => first.child.once("exit", r));
    first.child.kill("SIGKILL");
    await gone;
    const next = await run("successor", withLock("on"));
    expect(serving(next.lines)).toBe(true);
    expect(await next.stop()).toBe(0);
  });
});
