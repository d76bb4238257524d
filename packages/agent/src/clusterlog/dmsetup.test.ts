import { execFileSync } from "node:child_process";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DmsetupError,
  dmsetupSuspendResume,
  mirrorBlockDevices,
  parseMirrorTables,
  readDirect,
} from "./dmsetup.ts";

// `dmsetup table --target mirror` as LVM2 leaves it on a clustered-mirror host: a disk-log
// mirror, a core-log one, a local (non-cluster) mirror and another target type.
const TABLES = [
  "vg0-data: 0 2097152 mirror userspace 4 LVM-3fJ0abc clustered-disk 253:2 1024 2 253:3 0 253:4 0 1 handle_errors",
  "vg0-scratch: 0 409600 mirror userspace 3 LVM-9Kq1core clustered-core 1024 2 253:6 0 253:7 0",
  "vg1-local: 0 409600 mirror disk 2 253:9 1024 2 253:10 0 253:11 0",
  "vg0-lin: 0 8192 linear 8:16 2048",
].join("\n");

describe("finding a mirror device by its userspace log uuid", () => {
  it("reads the uuid after `userspace <argc>`, and only from mirror tables", () => {
    expect(parseMirrorTables(TABLES)).toEqual([
      { device: "vg0-data", logUuid: "LVM-3fJ0abc" },
      { device: "vg0-scratch", logUuid: "LVM-9Kq1core" },
    ]);
    expect(parseMirrorTables("No devices found\n")).toEqual([]);
  });
});

describe("dmsetup suspend + resume", () => {
  it("fails with dmsetup's own reason where device-mapper is missing (this machine)", async () => {
    let installed = true;
    try {
      execFileSync("dmsetup", ["--version"], { stdio: "ignore" });
    } catch (error) {
      installed = (error as NodeJS.ErrnoException).code !== "ENOENT";
    }
    const attempt = dmsetupSuspendResume("LVM-3fJ0abc", { timeoutMs: 10_000 });
    await expect(attempt).rejects.toBeInstanceOf(DmsetupError);
    if (installed) await expect(attempt).rejects.toThrow(/dmsetup table --target mirror failed/);
  });

  // A recording stand-in for dmsetup, to check *which* calls are made in which order (the
  // real binary cannot suspend anything on these machines, which have no device-mapper).
  let dir = "";
  let fake = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mp-dmsetup-"));
    fake = join(dir, "dmsetup");
    await writeFile(join(dir, "tables"), TABLES);
    await writeFile(
      fake,
      `#!/bin/sh\necho "$*" >> "${dir}/calls"\n` +
        `case "$1" in table) cat "${dir}/tables";; info) printf '  6 vg0-lin\\n 12 vg0-data\\n  7 vg0-scratch\\n 13 vg1-local\\n';; suspend) [ -e "${dir}/fail-suspend" ] && { echo "device busy" >&2; exit 1; }; true;; esac\n`,
    );
    await chmod(fake, 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("suspends then resumes the device that carries the log", async () => {
    await writeFile(join(dir, "calls"), "");
    expect(await dmsetupSuspendResume("LVM-9Kq1core", { binary: fake })).toEqual(["vg0-scratch"]);
    expect((await readFile(join(dir, "calls"), "utf8")).trim().split("\n")).toEqual([
      "table --target mirror",
      "suspend vg0-scratch",
      "resume vg0-scratch",
    ]);
  });

  it("resumes even when the suspend failed, and reports the suspend's reason", async () => {
    await writeFile(join(dir, "calls"), "");
    await writeFile(join(dir, "fail-suspend"), "");
    await expect(dmsetupSuspendResume("LVM-3fJ0abc", { binary: fake })).rejects.toThrow(
      /suspend vg0-data failed: device busy/,
    );
    expect(await readFile(join(dir, "calls"), "utf8")).toContain("resume vg0-data");
    await rm(join(dir, "fail-suspend"));
  });

  it("names the log when no mirror on this host carries it", async () => {
    await expect(dmsetupSuspendResume("LVM-nope", { binary: fake })).rejects.toThrow(
      /no mirror device on this host has the userspace log LVM-nope/,
    );
  });
});

describe("waking a mirror: its block devices and one direct read", () => {
  let dir = "";
  let fake = "";
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "mp-dmsetup-wake-"));
    fake = join(dir, "dmsetup");
    await writeFile(join(dir, "tables"), TABLES);
    // dmsetup info -c pads its columns: the minor right-aligned, then the name.
    await writeFile(
      fake,
      `#!/bin/sh\necho "$*" >> "${dir}/calls"\n` +
        `case "$1" in table) cat "${dir}/tables";; info) printf '  6 vg0-lin\\n 12 vg0-data\\n  7 vg0-scratch\\n';; esac\n`,
    );
    await chmod(fake, 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("finds /dev/dm-<minor> of the mirror that carries the log, by its name", async () => {
    await writeFile(join(dir, "calls"), "");
    expect(await mirrorBlockDevices("LVM-3fJ0abc", { binary: fake })).toEqual(["/dev/dm-12"]);
    expect(await mirrorBlockDevices("LVM-9Kq1core", { binary: fake })).toEqual(["/dev/dm-7"]);
    expect((await readFile(join(dir, "calls"), "utf8")).trim().split("\n")[1]).toBe(
      "info -c --noheadings --separator   -o minor,name",
    );
    await expect(mirrorBlockDevices("LVM-nope", { binary: fake })).rejects.toThrow(
      /no mirror device on this host has the userspace log LVM-nope/,
    );
  });

  it("reads one block with O_DIRECT (a real file here), and says why it could not", async () => {
    const file = join(dir, "leg");
    await writeFile(file, Buffer.alloc(8192, 7));
    await expect(readDirect(file, 4096)).resolves.toBeUndefined();
    await expect(readDirect(join(dir, "no-such-device"), 4096)).rejects.toThrow(
      /iflag=direct failed: .*No such file or directory/,
    );
  });
});
