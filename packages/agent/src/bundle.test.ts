import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

// Issue 12: the agent bundle (build.mjs, what `npm start`, systemd and the kernel lab run)
// holds no test or demo code. Built here into a temporary directory; esbuild's metafile
// names every input file (relative to packages/agent; here relative to the repository).
const agentDir = join(import.meta.dirname, "..");
const repo = join(agentDir, "../..");
const out = mkdtempSync(join(tmpdir(), "mp-agent-bundle-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function build(): { inputs: string[]; bundle: string } {
  execFileSync(process.execPath, ["build.mjs", join(out, "cli.mjs")], {
    cwd: agentDir,
    stdio: "pipe",
  });
  const meta = JSON.parse(readFileSync(join(out, "cli.meta.json"), "utf8")) as {
    inputs: Record<string, unknown>;
  };
  return {
    inputs: Object.keys(meta.inputs).map((f) => relative(repo, resolve(agentDir, f))),
    bundle: readFileSync(join(out, "cli.mjs"), "utf8"),
  };
}

describe("the agent bundle", () => {
  const { inputs, bundle } = build();

  it("is the agent (a check that the metafile is read right)", () => {
    expect(inputs).toContain("packages/agent/src/cli.ts");
    expect(inputs).toContain("packages/agent/src/agent.ts");
    expect(inputs.some((f) => f.includes("packages/clusterlog/src/"))).toBe(true);
  });

  it("holds no test support, test, fixture or benchmark file of any workspace package", () => {
    const testCode = inputs.filter(
      (f) =>
        /\.test\.tsx?$/.test(f) ||
        /(^|\/)(testing|test|bench|e2e)\//.test(f) ||
        /(^|\/)testing\.ts$/.test(f) ||
        /(harness|fixtures?)[^/]*$/.test(f),
    );
    expect(testCode).toEqual([]);
  });

  it("holds no simulator or demo code, and the CLI has no demo command", () => {
    const demoCode = inputs.filter(
      (f) => /(^|\/)simulator\//.test(f) || /demo[^/]*$/.test(f) || /nats-server[^/]*$/.test(f),
    );
    expect(demoCode).toEqual([]);
    expect(bundle).not.toMatch(/\.command\(\s*["']demo["']/);
    expect(bundle).not.toContain("startDemo");
  });
});
