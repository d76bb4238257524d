import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { acquireHostLock, loadNetlink } from "./index.ts";

// The host-wide lock the agent takes before it joins the connector's group 7: the kernel's
// flock, held by real processes. Needs the addon only (no root, no dm-log-userspace).

const dir = mkdtempSync(join(tmpdir(), "mp-host-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const index = join(import.meta.dirname, "index.ts");

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

/** A process that takes the lock, prints what it got, and holds it until killed. */
function holder(path: string): Promise<{ child: ChildProcess; said: string }> {
  const script = `
    const { acquireHostLock } = await import(${JSON.stringify(index)});
    const got = acquireHostLock(${JSON.stringify(path)});
    console.log(got.ok ? "locked" : got.held ? "held " + got.holder : "error " + got.reason);
    setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.stdout!.once("data", (chunk: Buffer) =>
      resolve({ child, said: chunk.toString().trim() }),
    );
    child.once("exit", (code) => reject(new Error(`holder exited ${code}`)));
  });
}

const exited = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });

describe.runIf(loadNetlink().ok)("acquireHostLock", () => {
  it("one holder at a time across processes; the second is told the holder's pid", async () => {
    const path = join(dir, "a", "connector.lock");
    const first = await holder(path);
    expect(first.said).toBe("locked");
    expect(readFileSync(path, "utf8").trim()).toBe(String(first.child.pid));

    const second = await holder(path);
    expect(second.said).toBe(`held ${first.child.pid}`);
    const here = acquireHostLock(path);
    expect(here).toEqual({ ok: false, held: true, holder: String(first.child.pid) });
  });

  it("a holder killed with SIGKILL releases it: the kernel drops the lock, no stale file", async () => {
    const path = join(dir, "connector.lock");
    const first = await holder(path);
    expect(first.said).toBe("locked");
    first.child.kill("SIGKILL");
    await exited(first.child);
    // The dead holder's pid is still in the file; it decides nothing.
    expect(readFileSync(path, "utf8").trim()).toBe(String(first.child.pid));
    const next = await holder(path);
    expect(next.said).toBe("locked");
  });

  it("release lets the next one in within the same process", () => {
    const path = join(dir, "same.lock");
    const got = acquireHostLock(path);
    if (!got.ok) throw new Error("not locked");
    // flock locks belong to the open file: a second open in the same process is refused too.
    expect(acquireHostLock(path).ok).toBe(false);
    got.lock.release();
    got.lock.release();
    const again = acquireHostLock(path);
    expect(again.ok).toBe(true);
    if (again.ok) again.lock.release();
  });

  it("an unusable path is an error, not a lock", () => {
    const file = join(dir, "a-file");
    writeFileSync(file, "");
    const got = acquireHostLock(join(file, "connector.lock"));
    expect(got.ok).toBe(false);
    expect(got.ok === false && got.held).toBe(false);
  });
});
