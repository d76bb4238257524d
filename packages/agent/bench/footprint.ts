// PB8 (PERF.md): agent footprint at default sampling — idle RSS ≤ 120 MB, idle CPU ≤ 1 %.
// Starts a real embedded Postgres, migrates it, runs the agent as its own process with the
// default 10 s interval, lets it warm up, then reads /proc/<pid> over a measuring window.
//   npx tsx packages/agent/bench/footprint.ts [warmupSeconds=20] [windowSeconds=60]
import { spawn, spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { startBenchPostgres } from "@mirrorplane/db/testing";

const warmup = Number(process.argv[2] ?? 20);
const window = Number(process.argv[3] ?? 60);
const pg = await startBenchPostgres("mirrorplane-bench-", 54391);
const dir = pg.dir;
await writeFile(join(dir, "token"), "bench-token-0123456789abcdef\n");

// The production bundle (what `npm start`, systemd and containers run).
const agentDir = resolve(import.meta.dirname, "..");
spawnSync(process.execPath, ["build.mjs"], { cwd: agentDir, stdio: "inherit" });
const bin = join(agentDir, "dist/cli.mjs");
const agent = spawn(
  process.execPath,
  [
    bin,
    "run",
    "--token-file",
    join(dir, "token"),
    "--data-dir",
    join(dir, "agent"),
    "--port",
    "7491",
    "--log-level",
    "warn",
  ],
  { env: { ...process.env, DATABASE_URL: pg.url }, stdio: ["ignore", "ignore", "inherit"] },
);
const pid = agent.pid!;
const ticks = async () => {
  const fields = (await readFile(`/proc/${pid}/stat`, "utf8")).split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks
};
const rssMb = async () => {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1]) / 1024;
};
const clkTck = 100; // USER_HZ on Linux x86-64

await new Promise((r) => setTimeout(r, warmup * 1000));
const t0 = await ticks();
const started = Date.now();
let peakRss = 0;
while (Date.now() - started < window * 1000) {
  peakRss = Math.max(peakRss, await rssMb());
  await new Promise((r) => setTimeout(r, 1000));
}
const cpuSeconds = ((await ticks()) - t0) / clkTck;
const wall = (Date.now() - started) / 1000;
const rss = await rssMb();
agent.kill("SIGTERM");
await new Promise((r) => agent.once("exit", r));
await pg.stop();

console.log(
  `PB8 agent footprint (sampling every 10 s, writing to Postgres, ${window} s window after ${warmup} s warm-up)`,
);
console.log(`  RSS now ${rss.toFixed(1)} MB, peak ${peakRss.toFixed(1)} MB   (target ≤ 120 MB)`);
console.log(
  `  CPU ${((100 * cpuSeconds) / wall).toFixed(2)} % of one core (${cpuSeconds.toFixed(2)} s in ${wall.toFixed(0)} s)   (target ≤ 1 %)`,
);
process.exit(0);
