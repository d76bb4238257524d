// `npm test`: every check, in order, and one closing line `N passed, N failed`.
//   typecheck → lint → vitest (unit + integration on real Postgres) → build → Playwright
//   → the kernel lab (QEMU)
// Each stage runs even if an earlier test stage failed, so one run reports everything;
// the exit code is non-zero if anything failed.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const reports = join(root, ".mirrorplane", "test-reports");
rmSync(reports, { recursive: true, force: true });
mkdirSync(reports, { recursive: true });

let passed = 0;
let failed = 0;
let skipped = 0;
const failures: string[] = [];

function run(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): boolean {
  console.log(`\n=== ${label}: ${cmd} ${args.join(" ")}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  const ok = r.status === 0;
  console.log(
    `=== ${label}: ${ok ? "ok" : `FAILED (exit ${r.status ?? r.signal})`} in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return ok;
}

function check(label: string, ok: boolean) {
  if (ok) passed++;
  else {
    failed++;
    failures.push(label);
  }
}

/** Adds a vitest JSON report's counts; a run that failed without failed tests fails too. */
function countVitest(label: string, file: string, ok: boolean) {
  if (!existsSync(file)) return check(`${label} (no report)`, false);
  const r = JSON.parse(readFileSync(file, "utf8")) as {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
    /** Files whose setup or teardown failed (an afterAll error fails no test). */
    numFailedTestSuites?: number;
  };
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  if (r.numFailedTests > 0) failures.push(`${label}: ${r.numFailedTests} failed`);
  const suites = r.numFailedTestSuites ?? 0;
  if (r.numFailedTests === 0 && suites > 0)
    check(`${label}: ${suites} file(s) failed outside a test`, false);
  else if (!ok && r.numFailedTests === 0) check(`${label} run`, false);
}

check(
  "typecheck",
  run("typecheck", "npx", ["turbo", "run", "typecheck", "--output-logs=errors-only"]) &&
    run("typecheck (root)", "npx", ["tsc", "--noEmit", "-p", "."]),
);
check("lint", run("lint", "npx", ["biome", "check", "."]));

const vitestJson = join(reports, "vitest.json");
const vitestOk = run("vitest", "npx", [
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${vitestJson}`,
]);
countVitest("vitest", vitestJson, vitestOk);

const built = run("build", "npx", [
  "turbo",
  "run",
  "build",
  "--filter=@mirrorplane/web",
  "--filter=@mirrorplane/agent",
  "--filter=@mirrorplane/simulator",
  "--output-logs=errors-only",
]);
check("build", built);
if (built) {
  const pwJson = join(reports, "playwright.json");
  const pwOk = run("e2e", "npx", ["playwright", "test"], { PLAYWRIGHT_JSON_OUTPUT_FILE: pwJson });
  if (existsSync(pwJson)) {
    const r = JSON.parse(readFileSync(pwJson, "utf8")) as {
      stats: { expected: number; unexpected: number; flaky: number; skipped: number };
    };
    passed += r.stats.expected + r.stats.flaky;
    failed += r.stats.unexpected;
    skipped += r.stats.skipped;
    if (r.stats.unexpected > 0) failures.push(`e2e: ${r.stats.unexpected} failed`);
    if (!pwOk && r.stats.unexpected === 0) check("e2e run", false);
  } else check("e2e (no report)", false);
}

// The kernel lab (docs/KERNEL-LAB.md): Debian's kernel under QEMU with the real dm-raid1
// and dm-log-userspace, one host and three; it needs the agent bundle built above. Its own
// vitest run, one file at a time (each boots VMs that take both cores).
if (built) {
  const labJson = join(reports, "kernel-lab.json");
  const labOk = run("kernel lab", "npx", [
    "vitest",
    "run",
    "--config",
    "test/kernel-lab/vitest.config.ts",
    "--reporter=default",
    "--reporter=json",
    `--outputFile.json=${labJson}`,
  ]);
  countVitest("kernel lab", labJson, labOk);
}

if (failures.length) console.log(`\nfailed: ${failures.join("; ")}`);
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 ? 1 : 0);
