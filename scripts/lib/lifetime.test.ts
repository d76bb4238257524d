import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { ancestorsToOutlive } from "./lifetime.ts";

// `npm start` must not outlive its npm (issue 14). Real processes: npm runs a script under
// tsx, as `npm start` runs scripts/start.ts, which takes `whenAncestorsGone` from the same
// module and holds a child of its own (as start.ts holds the agent, the web app and the
// demo); npm is then killed.

const root = resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(join(tmpdir(), "mp-lifetime-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const started: ChildProcess[] = [];
afterEach(() => {
  for (const p of started.splice(0)) {
    try {
      process.kill(-p.pid!, "SIGKILL");
    } catch {}
  }
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Writes the fixture script and returns where it reports its and its child's pid. */
function fixture(name: string): { script: string; pids: string } {
  const pids = join(dir, `${name}.pids`);
  const script = join(dir, `${name}.ts`);
  writeFileSync(
    script,
    `import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { whenAncestorsGone } from ${JSON.stringify(join(root, "scripts/lib/lifetime.ts"))};
const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
writeFileSync(${JSON.stringify(pids)}, JSON.stringify({ self: process.pid, child: child.pid }));
whenAncestorsGone((why) => {
  console.log("gone: " + why);
  child.kill("SIGTERM");
  child.once("exit", () => process.exit(0));
}, 200);
setInterval(() => {}, 1000);
`,
  );
  return { script, pids };
}

const env = { ...process.env, PATH: `${join(root, "node_modules/.bin")}:${process.env.PATH}` };

describe.runIf(process.platform === "linux")("whenAncestorsGone", () => {
  it("npm killed with SIGTERM: the script and its child stop (npm forwards nothing)", async () => {
    const { script, pids } = fixture("npm");
    writeFileSync(
      join(dir, "package.json"),
      JSON.stringify({
        name: "lifetime-fixture",
        private: true,
        scripts: { start: `tsx ${script}` },
      }),
    );
    const npm = spawn("npm", ["start", "--silent"], {
      cwd: dir,
      env,
      detached: true,
      stdio: "ignore",
    });
    started.push(npm);
    await until(() => existsSync(pids), "the script started");
    const { self, child } = JSON.parse(readFileSync(pids, "utf8")) as {
      self: number;
      child: number;
    };
    // It watches up to npm itself.
    expect(alive(self) && alive(child)).toBe(true);
    process.kill(npm.pid!, "SIGTERM");
    await until(() => !alive(self) && !alive(child), "script and child stopped");
  }, 60_000);

  it("run by hand under tsx: its parent killed with SIGKILL, it stops too", async () => {
    const { script, pids } = fixture("tsx");
    const tsx = spawn(join(root, "node_modules/.bin/tsx"), [script], {
      env,
      detached: true,
      stdio: "ignore",
    });
    started.push(tsx);
    await until(() => existsSync(pids), "the script started");
    const { self, child } = JSON.parse(readFileSync(pids, "utf8")) as {
      self: number;
      child: number;
    };
    process.kill(tsx.pid!, "SIGKILL");
    await until(() => !alive(self) && !alive(child), "script and child stopped");
  }, 60_000);

  it("watches the chain up to the nearest npm, or the parent alone", () => {
    const chain = ancestorsToOutlive();
    expect(chain.length).toBeGreaterThan(0);
    expect(chain[0]!.pid).toBe(process.ppid);
  });
});
