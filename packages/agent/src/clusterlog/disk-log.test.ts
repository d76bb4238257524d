import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type CliProcess, startCli } from "../../testing/cli-process.ts";
import { Kernel, TestCluster } from "../../testing/server-harness.ts";
import { TestClient, u64 } from "../../testing/uapi-client.ts";
import { splitDeviceNumber } from "./log-devices.ts";

// Disk logs on real block devices (loop devices) and real files, including failures the
// kernel would see: a device that turns read-only under us (scenario 17), a read-only
// loop device, a full filesystem. Needs root (losetup, mount), which these machines are.

const root = process.getuid?.() === 0;
const MiB = 1 << 20;
const A = 1;

const work = mkdtempSync(join(tmpdir(), "mp-disklog-"));
const loops: string[] = [];
const mounts: string[] = [];

function losetup(file: string, readOnly = false): string {
  const args = readOnly ? ["-r", "-f", "--show", file] : ["-f", "--show", file];
  const dev = execFileSync("losetup", args, { encoding: "utf8" }).trim();
  loops.push(dev);
  return dev;
}

function deviceNumber(dev: string): string {
  const { major, minor } = splitDeviceNumber(statSync(dev).rdev);
  return `${major}:${minor}`;
}

function backingFile(name: string, contents?: Uint8Array): string {
  const path = join(work, name);
  writeFileSync(path, contents ?? new Uint8Array(MiB));
  return path;
}

/** The device's bytes as a reader of the block device sees them. */
function deviceBytes(dev: string, length = 4096): Uint8Array {
  return new Uint8Array(readFileSync(dev).subarray(0, length));
}

afterAll(() => {
  for (const dev of loops.reverse()) {
    try {
      execFileSync("blockdev", ["--setrw", dev]);
    } catch {}
    try {
      execFileSync("losetup", ["-d", dev]);
    } catch {}
  }
  for (const dir of mounts.reverse()) {
    try {
      execFileSync("umount", [dir]);
    } catch {}
  }
  rmSync(work, { recursive: true, force: true });
});

let cluster: TestCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe.skipIf(!root)("disk logs on loop devices and files", () => {
  let dev = "";
  let number = "";
  beforeAll(() => {
    dev = losetup(backingFile("loop-a.img"));
    number = deviceNumber(dev);
  });

  it("resolves M:m through /sys/dev/block to the loop device and writes the log there (P34)", async () => {
    cluster = await TestCluster.create();
    await cluster.startNode(A);
    const a = await cluster.kernel(A);
    const ctr = await a.ctr(`2097152 clustered-disk ${number} 1024`);
    expect(ctr.error).toBe(0);
    expect(String.fromCharCode(...ctr.data)).toBe(`${number}\0`);
    expect((await a.resume()).error).toBe(0);
    const bytes = deviceBytes(dev);
    expect([...bytes.subarray(0, 16)]).toEqual([
      0x72, 0x52, 0x69, 0x4d, 0x02, 0, 0, 0, 0x00, 0x08, 0, 0, 0, 0, 0, 0,
    ]);
    expect(await a.statusInfo()).toBe(`3 clustered-disk ${number} A`);
  });

  it("a disk log survives a server restart bit for bit", async () => {
    cluster = await TestCluster.create();
    await cluster.startNode(A);
    const socketPath = cluster.node(A).socketPath;
    const a = await cluster.kernel(A);
    a.uuid = "LVM-restart";
    await a.up(`2097152 clustered-disk ${number} 1024`);
    for (const r of [0, 1, 2, 3, 9, 100, 2047]) await a.setRegionSync(r, true);
    await a.clear([0, 1, 2, 3, 9, 100, 2047]);
    await a.flush([2, 500]); // 2 and 500 dirty on disk
    const before = deviceBytes(dev);
    const syncBefore = await a.syncCount();
    await cluster.stopNode(A);
    expect(deviceBytes(dev)).toEqual(before);

    await cluster.startNode(A, { socketPath });
    const k = await cluster.kernel(A);
    k.uuid = "LVM-restart";
    await k.up(`2097152 clustered-disk ${number} 1024`);
    // The master resume re-read the disk and wrote it back unchanged.
    expect(deviceBytes(dev)).toEqual(before);
    // Marked regions come back out of sync (resync), the rest as they were.
    expect(await k.syncCount()).toBe(syncBefore - 1);
    expect(await k.inSync(2)).toBe(0);
    expect(await k.inSync(9)).toBe(1);
    expect(await k.resyncWork()).toEqual([1, 2]);
  });

  it("scenario 17: a write error makes the log D and FLUSH -EIO", async () => {
    const failing = losetup(backingFile("loop-fail.img"));
    cluster = await TestCluster.create();
    await cluster.startNode(A, { overrides: { "7:0": failing } });
    const a = await cluster.kernel(A);
    // nosync: every region starts clean, so the MARK below changes a bit and must be written.
    await a.up("2097152 clustered-disk 7:0 1024 nosync");
    execFileSync("blockdev", ["--setro", failing]); // writes now fail (EPERM) under our open fd
    await a.mark([1]);
    const flush = await a.flush();
    expect([flush.error, flush.dataSize]).toEqual([-5, 0]);
    const info = await a.statusInfoReply();
    expect(String.fromCharCode(...info.data)).toBe("3 clustered-disk 7:0 D");
    expect(info.dataSize).toBe(22);
    // The server keeps serving: other requests and other logs are fine.
    expect(await a.isClean(1)).toBe(0);
    execFileSync("blockdev", ["--setrw", failing]);
  });

  it("a read-only loop device: RESUME reads it, the write-back fails with -EIO, status D", async () => {
    const image = new Uint8Array(MiB);
    const view = new DataView(image.buffer);
    view.setUint32(0, 0x4d695272, true);
    view.setUint32(4, 2, true);
    view.setBigUint64(8, 2048n, true);
    image.fill(0xff, 1024, 1024 + 256);
    const ro = losetup(backingFile("loop-ro.img", image), true);
    cluster = await TestCluster.create();
    await cluster.startNode(A, { overrides: { "7:0": ro } });
    const a = await cluster.kernel(A);
    expect((await a.ctr("2097152 clustered-disk 7:0 1024")).error).toBe(0);
    expect((await a.resume()).error).toBe(-5);
    expect(await a.statusInfo()).toBe("3 clustered-disk 7:0 D");
    expect(cluster.node(A).fileStats.reads).toBe(1);
    expect(deviceBytes(ro, 2048)).toEqual(image.subarray(0, 2048));
  });

  it("a plain log file on a full filesystem: -EIO and D, other logs unaffected", async () => {
    const dir = join(work, "full");
    mkdirSync(dir);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]);
    mounts.push(dir);
    try {
      writeFileSync(join(dir, "filler"), new Uint8Array(MiB));
    } catch {
      // ENOSPC: the filesystem is full now
    }
    cluster = await TestCluster.create();
    await cluster.startNode(A, {
      overrides: { "7:0": join(dir, "log"), "7:1": backingFile("ok.log") },
    });
    const a = await cluster.kernel(A);
    a.uuid = "LVM-full";
    expect((await a.ctr("2097152 clustered-disk 7:0 1024 nosync")).error).toBe(0);
    expect((await a.resume()).error).toBe(-5);
    expect(await a.statusInfo()).toBe("3 clustered-disk 7:0 D");
    a.uuid = "LVM-fine";
    await a.up("2097152 clustered-disk 7:1 1024 nosync");
    await a.mark([7]);
    expect((await a.flush()).error).toBe(0);
    expect(await a.statusInfo()).toBe("3 clustered-disk 7:1 A");
  });
});

// The external kill loop (issue 14: 220 kills during, right after and just before FLUSH
// replies, 0 lost marks), kept bounded: a real agent process on a file disk log, killed
// with SIGKILL at a different point of a pipelined batch of FLUSHes each time. A mark is
// acknowledged once its FLUSH reply arrived; after the restart the kernel's RESUME reads
// the disk, and every acknowledged mark must come back dirty (out of sync), every round.
describe("SIGKILL during FLUSH, over a disk log (real processes)", () => {
  it("no acknowledged mark is lost across repeated kills", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mp-kill-flush-"));
    // Whatever fails, no agent of this test outlives it.
    const agents: CliProcess[] = [];
    const track = (cli: CliProcess) => {
      agents.push(cli);
      return cli;
    };
    try {
      const logFile = join(dir, "log-7-0");
      writeFileSync(logFile, new Uint8Array(MiB));
      const socket = join(dir, "clog.sock");
      const ctr = "2097152 clustered-disk 7:0 1024"; // 2,048 regions
      const CONTROL = 2047;
      const acknowledged = new Set<number>();
      let next = 0;
      const rounds = 8;
      const perRound = 24;
      for (let round = 0; round < rounds; round++) {
        const cli = track(
          startCli([
            "--socket",
            socket,
            "--data-dir",
            join(dir, "data"),
            "--log-device",
            `7:0=${logFile}`,
            "--connector",
            "off",
          ]),
        );
        await cli.line(/cluster-log server listening/);
        const k = new Kernel(await TestClient.connect(socket));
        k.uuid = "LVM-kill-flush";
        await k.up(ctr);
        // Every mark acknowledged before any earlier kill is still on the disk, and the
        // control region, clean and never marked, came back in sync (the disk was read).
        for (const r of acknowledged) expect(await k.inSync(r), `region ${r}`).toBe(0);
        if (round > 0) expect(await k.inSync(CONTROL)).toBe(1);
        else {
          expect((await k.setRegionSync(CONTROL, true)).error).toBe(0);
          await k.clear([CONTROL]);
        }

        // Fresh regions, in sync and clean on the disk (the clean bit is set by a CLEAR,
        // written by the FLUSH), then marked by pipelined FLUSHes.
        const regions = Array.from({ length: perRound }, () => next++);
        for (const r of regions) expect((await k.setRegionSync(r, true)).error).toBe(0);
        await k.clear(regions);
        expect((await k.flush()).error).toBe(0);
        for (const r of regions) expect(await k.inSync(r)).toBe(1);
        const bySeq = new Map(regions.map((r) => [k.client.post(9, u64(r)), r]));
        const exited = new Promise((resolve) => cli.child.once("exit", resolve));
        // Where the kill lands: just after the first reply, with replies still in flight, or
        // after the last one.
        const mode = round % 3;
        if (mode === 0) await k.client.reply(k.client.nextSeq - perRound);
        else if (mode === 1) await new Promise((r) => setTimeout(r, round % 4));
        else await k.client.reply(k.client.nextSeq - 1);
        cli.child.kill("SIGKILL");
        await exited;
        await k.client.closed;
        for (const reply of k.client.received) {
          const r = bySeq.get(reply.seq);
          if (r !== undefined && reply.error === 0) acknowledged.add(r);
        }
        k.client.destroy();
      }
      // One more start: the last round's acknowledged marks too.
      const cli = track(
        startCli([
          "--socket",
          socket,
          "--data-dir",
          join(dir, "data"),
          "--log-device",
          `7:0=${logFile}`,
          "--connector",
          "off",
        ]),
      );
      await cli.line(/cluster-log server listening/);
      const k = new Kernel(await TestClient.connect(socket));
      k.uuid = "LVM-kill-flush";
      await k.up(ctr);
      for (const r of acknowledged) expect(await k.inSync(r), `region ${r}`).toBe(0);
      expect(await k.inSync(CONTROL)).toBe(1);
      // The kills landed at different points: some rounds acknowledged everything, and
      // overall far from nothing was acknowledged.
      expect(acknowledged.size).toBeGreaterThan(rounds * 2);
      k.client.destroy();
      const exited = new Promise((resolve) => cli.child.once("exit", resolve));
      cli.child.kill("SIGKILL");
      await exited;
    } finally {
      for (const a of agents) if (a.child.exitCode === null) a.child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
