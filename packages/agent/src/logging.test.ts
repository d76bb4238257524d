import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { processLog } from "./logging.ts";

const writer = resolve(import.meta.dirname, "../testing/log-writer.ts");

/** Runs the writer with stdout a pipe nobody reads (or reads); its exit code and wall time. */
function runWriter(read: boolean): Promise<{ code: number | null; ms: number; out: number }> {
  return new Promise((done, fail) => {
    const started = Date.now();
    // Read: up to 10 s to write them all; not read: 300 ms, then what is left is given up.
    const flushMs = read ? "10000" : "300";
    const child = spawn(process.execPath, ["--import", "tsx", writer, "20000", flushMs], {
      stdio: ["ignore", "pipe", "ignore"],
      cwd: resolve(import.meta.dirname, ".."),
    });
    let out = 0;
    if (read) child.stdout!.on("data", (chunk: Buffer) => (out += chunk.length));
    else child.stdout!.pause(); // a reader that stopped reading: the pipe fills
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error("the writer did not exit within 20 s: its exit waited for stdout"));
    }, 20_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code, ms: Date.now() - started, out });
    });
  });
}

describe("the daemon's log (logging.ts)", () => {
  it("exits although its stdout reader stopped reading (pino's default never did)", async () => {
    const stalled = await runWriter(false);
    expect(stalled.code).toBe(0);
  }, 30_000);

  it("when stdout is read, exit waits until every line is written", async () => {
    const read = await runWriter(true);
    expect(read.code).toBe(0);
    // 20,000 lines of about 270 bytes: all of them, not what fit in a pipe.
    expect(read.out).toBeGreaterThan(20_000 * 250);
  }, 30_000);

  it("flush waits for the buffered lines of a file destination; abandon drops what is left", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mp-logging-"));
    try {
      const path = join(dir, "log.jsonl");
      const logs = processLog({ name: "t" }, path);
      await new Promise((r) => setTimeout(r, 50)); // the file opens asynchronously
      for (let i = 0; i < 5000; i++) logs.log.info({ i }, "line");
      expect(await logs.flush(10_000)).toBe(true);
      const written = (await readFile(path, "utf8")).trim().split("\n");
      expect(written).toHaveLength(5000);
      expect(JSON.parse(written[4999]!)).toMatchObject({ i: 4999, msg: "line" });
      logs.abandon();
      expect(await logs.flush(100)).toBe(false);
      expect(logs.dropped()).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
