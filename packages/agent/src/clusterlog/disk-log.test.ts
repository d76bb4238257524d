import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { splitDeviceNumber } from "./log-devices.ts";
import { TestCluster } from "./test-harness.ts";

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
