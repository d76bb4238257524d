import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, natsServerBinary } from "@mirrorplane/simulator/nats-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli } from "../../testing/cli-process.ts";
import { Kernel } from "../../testing/server-harness.ts";
import { TestClient } from "../../testing/uapi-client.ts";
import { writeMemberKeyPair } from "./member-keys.ts";

// `mirrorplane-agent clusterlog --nats` as three hosts run it: three processes, one real
// nats-server, each kernel on its own member's Unix socket. A request ordered on one member
// is visible on the others; the lowest node id writes the shared disk log. Kept small: no
// failures here (cluster-e2e.nats.test.ts and the simulation cover those).

const UUID = "LVM-cli-nats";
const CTR = "65536 clustered-disk 7:0 1024 nosync"; // 64 regions, all in sync and clean

let nats: NatsServer;
let dir: string;

interface Member {
  readonly node: number;
  readonly cli: CliProcess;
  readonly kernel: Kernel;
}

async function startMember(node: number, logFile: string): Promise<Member> {
  const socket = join(dir, `node-${node}.sock`);
  const cli = startCli([
    "--socket",
    socket,
    "--data-dir",
    join(dir, `data-${node}`),
    "--log-device",
    `7:0=${logFile}`,
    "--node-id",
    String(node),
    "--connector",
    "off",
    "--nats",
    nats.url,
    "--cluster",
    "cli_test",
    "--failure-timeout-ms",
    "3000",
    // Each member signs with its own key and trusts the three public keys (issue 15).
    "--member-key",
    join(dir, "keys", `${node}.key`),
    "--member-keys",
    join(dir, "keys"),
  ]);
  await cli.line(/cluster-log server listening/);
  const kernel = new Kernel(await TestClient.connect(socket));
  kernel.uuid = UUID;
  kernel.luid = BigInt(node) * 0x100n + 1n;
  return { node, cli, kernel };
}

/** Clean bit of `region` in the shared on-disk log (spec §5: bitmap at byte 1024). */
async function diskClean(logFile: string, region: number): Promise<number> {
  const image = await readFile(logFile);
  return (image[1024 + (region >> 3)]! >> (region & 7)) & 1;
}

describe.skipIf(natsServerBinary() === null)("mirrorplane-agent clusterlog --nats", () => {
  beforeAll(async () => {
    nats = await NatsServer.start();
    dir = await mkdtemp(join(tmpdir(), "mp-clusterlog-nats-"));
    for (const node of [1, 2, 3]) await writeMemberKeyPair(join(dir, "keys"), node);
  });
  afterAll(async () => {
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("three processes over one NATS keep one coherent log", async () => {
    const logFile = join(dir, "log-7-0.img");
    await writeFile(logFile, new Uint8Array(1 << 20));
    const members: Member[] = [];
    try {
      for (const node of [1, 2, 3]) members.push(await startMember(node, logFile));
      const [m1, m2, m3] = members as [Member, Member, Member];
      for (const m of members) await m.kernel.up(CTR);
      expect(m1.cli.lines.some((l) => l.includes("joining the cluster over NATS"))).toBe(true);

      // A write on node 2 (integrated FLUSH with its mark): node 1, the server, writes the
      // shared log before the FLUSH is answered; every member sees the region dirty.
      expect((await m2.kernel.flush([5])).error).toBe(0);
      expect(await diskClean(logFile, 5)).toBe(0);
      expect(await m3.kernel.isClean(5)).toBe(0);
      expect(await m1.kernel.isClean(5)).toBe(0);
      expect(await m1.kernel.isClean(6)).toBe(1);

      // Reference counting across members (spec §3.6, P10): node 3 marks it too; node 2's
      // clear leaves it dirty, node 3's makes it clean.
      expect((await m3.kernel.flush([5])).error).toBe(0);
      await m2.kernel.clear([5]);
      expect(await m1.kernel.isClean(5)).toBe(0);
      await m3.kernel.clear([5]);
      expect(await m1.kernel.isClean(5)).toBe(1);

      // A failed write reported by node 1 makes region 9 out of sync everywhere. IN_SYNC is
      // answered from each member's own replica; an ordered request first (IS_CLEAN) makes
      // sure that replica has applied node 1's report.
      expect((await m1.kernel.setRegionSync(9, false)).error).toBe(0);
      await m2.kernel.isClean(0);
      expect(await m2.kernel.inSync(9)).toBe(0);
      expect(await m2.kernel.syncCount()).toBe(63);
      // Nodes 1 and 2 saw the full sync count (hint rc): region 9 is handed out once each
      // has asked about it and got a hint below it (hint guard).
      for (const m of [m1, m2])
        expect(((await m.kernel.remoteRecovering(9)) as number[])[0]).toBe(1);
      // One recovery at a time, cluster-wide (§3.3).
      expect(await m3.kernel.resyncWork()).toEqual([1, 9]);
      expect(await m2.kernel.resyncWork()).toEqual([0, 0]);
      expect((await m3.kernel.setRegionSync(9, true)).error).toBe(0);
      await m2.kernel.isClean(0);
      expect(await m2.kernel.inSync(9)).toBe(1);
      expect(await m1.kernel.statusInfo()).toBe("3 clustered-disk 7:0 A");

      for (const m of members) {
        const exited = new Promise<number | null>((r) => m.cli.child.once("exit", (c) => r(c)));
        m.kernel.client.destroy();
        m.cli.child.kill("SIGTERM");
        expect(await exited).toBe(0);
      }
    } finally {
      for (const m of members) if (m.cli.child.exitCode === null) m.cli.child.kill("SIGKILL");
    }
  }, 60_000);

  // Issue 14: with NATS unreachable SIGTERM took 20.8 s (leave, heartbeat delete and drain
  // each waited for their timeouts); a supervisor's stop timeout may SIGKILL first. Its own
  // nats-server here, killed under the member.
  it("SIGTERM with NATS gone exits promptly and says what it could not do", async () => {
    const own = await NatsServer.start();
    const logFile = join(dir, "log-7-1.img");
    await writeFile(logFile, new Uint8Array(1 << 20));
    const socket = join(dir, "gone.sock");
    const cli = startCli([
      "--socket",
      socket,
      "--data-dir",
      join(dir, "data-gone"),
      "--log-device",
      `7:0=${logFile}`,
      "--node-id",
      "1",
      "--connector",
      "off",
      "--nats",
      own.url,
      "--cluster",
      "cli_gone",
      "--member-key",
      join(dir, "keys", "1.key"),
      "--member-keys",
      join(dir, "keys"),
    ]);
    try {
      await cli.line(/cluster-log server listening/);
      const kernel = new Kernel(await TestClient.connect(socket));
      kernel.uuid = UUID;
      await kernel.up(CTR);
      expect((await kernel.flush([5])).error).toBe(0);
      await own.kill("SIGKILL");
      await cli.line(/disconnected from NATS/);
      // A request in flight that can no longer be ordered.
      kernel.client.post(9, new Uint8Array(new BigUint64Array([6n]).buffer));
      const exited = new Promise<number | null>((r) => cli.child.once("exit", (c) => r(c)));
      const t0 = Date.now();
      cli.child.kill("SIGTERM");
      expect(await exited).toBe(0);
      const took = Date.now() - t0;
      // 2 s is the target (BENCHMARKS.md); the bound here leaves room for a loaded machine.
      console.log(`SIGTERM with NATS gone: exited in ${took} ms`);
      expect(took).toBeLessThan(4000);
      expect(cli.lines.some((l) => l.includes("node-leave not published"))).toBe(true);
      kernel.client.destroy();
    } finally {
      if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
      await own.stop().catch(() => {});
    }
  }, 60_000);
});
