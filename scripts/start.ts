// `npm start`: the whole product on one host with embedded defaults.
//   1. Postgres: DATABASE_URL if set, else the embedded server in .mirrorplane/postgres
//      (started, or reused if one from an earlier run is still up);
//   2. migrations;
//   3. one local agent reading this host's kernel files;
//   4. the dashboard (built on first start; turbo caches the build afterwards);
//   5. a demo cluster (three simulated agents + kernels, mirrors under write load, a
//      recovery in progress, the resync API on MIRRORPLANE_DEMO_PORT; MIRRORPLANE_DEMO=0
//      turns it off; `mirrorplane-sim demo` from packages/simulator). It is not
//      essential: if it stops, the rest keeps running.
// Ctrl-C (SIGINT), SIGTERM or SIGHUP, or the end of the `npm` process that ran it
// (lib/lifetime.ts), stops everything; data stays for the next start.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { resolveDatabase } from "@mirrorplane/db/embedded";
import { applyMigrations } from "@mirrorplane/db/migrate";
import { whenAncestorsGone } from "./lib/lifetime.ts";

const root = resolve(import.meta.dirname, "..");
const env = process.env;
const dataDir = resolve(root, env.MIRRORPLANE_DATA_DIR ?? ".mirrorplane");
const webPort = Number(env.PORT ?? env.MIRRORPLANE_WEB_PORT ?? 3000);
const agentPort = Number(env.MIRRORPLANE_AGENT_PORT ?? 7460);
const pgPort = Number(env.MIRRORPLANE_PG_PORT ?? 54329);
const sampleIntervalMs = Number(env.MIRRORPLANE_SAMPLE_INTERVAL_MS ?? 5_000);
const hostRoot = env.MIRRORPLANE_ROOT ?? "/";

const demoOn = env.MIRRORPLANE_DEMO !== "0";
const buildFilters = [
  "--filter=@mirrorplane/web",
  "--filter=@mirrorplane/agent",
  // The demo cluster is the simulator's bundle (packages/simulator, `mirrorplane-sim demo`).
  ...(demoOn ? ["--filter=@mirrorplane/simulator"] : []),
];
const say = (line: string) => console.log(`[mirrorplane] ${line}`);
const children: Array<{ name: string; proc: ChildProcess }> = [];
let stopping = false;
/** The database, once resolved (or while resolving): stopped last. */
let database: Promise<{ stop(): Promise<void> }> | null = null;

/** Stops the children, then the database, then exits; a second call exits at once. */
async function shutdown(why: string): Promise<void> {
  if (stopping) {
    say("second signal: exiting now");
    process.exit(130);
  }
  stopping = true;
  say(`${why}: stopping…`);
  await Promise.all(children.map(({ proc }) => stopChild(proc)));
  // Still starting: wait for it, so an embedded Postgres starting now is stopped too.
  await (await database?.catch(() => null))?.stop();
  say("stopped");
  process.exit(0);
}

// Installed before anything starts, so a signal during start-up stops what already runs.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => void shutdown(signal));
}
// npm does not forward SIGTERM to its script: when it is gone, so is everything here.
whenAncestorsGone((why) => void shutdown(why));

async function main() {
  const started = Date.now();
  await mkdir(dataDir, { recursive: true });

  const resolving = resolveDatabase({
    databaseUrl: env.DATABASE_URL,
    embeddedDir: join(dataDir, "postgres"),
    embeddedPort: pgPort,
    log: (line) => {
      if (/ready to accept|initialising|reusing/.test(line)) say(`postgres: ${line.trim()}`);
    },
  });
  database = resolving;
  const db = await resolving;
  if (stopping) return;
  say(
    db.embedded
      ? `embedded Postgres ${db.reused ? "reused" : "started"} on 127.0.0.1:${pgPort} (data in ${join(dataDir, "postgres")})`
      : "using DATABASE_URL",
  );
  const applied = await applyMigrations(db.url);
  say(
    applied.length ? `applied migrations: ${applied.join(", ")}` : "database schema is up to date",
  );

  const token = env.MIRRORPLANE_AGENT_TOKEN ?? (await secretFile(join(dataDir, "agent-token"), 24));
  const authSecret = env.BETTER_AUTH_SECRET ?? (await secretFile(join(dataDir, "auth-secret"), 32));
  const webHost = env.MIRRORPLANE_WEB_HOST ?? "127.0.0.1";
  const publicUrl =
    env.MIRRORPLANE_PUBLIC_URL ??
    `http://${webHost === "0.0.0.0" ? "127.0.0.1" : webHost}:${webPort}`;
  // Both loopback spellings reach the same server; sign-in from either must pass the origin check.
  const trusted = [
    `http://127.0.0.1:${webPort}`,
    `http://localhost:${webPort}`,
    env.MIRRORPLANE_TRUSTED_ORIGINS ?? "",
  ]
    .filter(Boolean)
    .join(",");

  if (env.MIRRORPLANE_SKIP_BUILD !== "1") {
    say("building the agent, the demo cluster and the dashboard (cached after the first start)…");
    const build = spawnSync(
      "npx",
      ["turbo", "run", "build", ...buildFilters, "--output-logs=errors-only"],
      {
        cwd: root,
        stdio: "inherit",
      },
    );
    if (build.status !== 0) throw new Error("build failed");
  }
  if (stopping) return;

  // The bundled agent: plain Node, no TypeScript loader at run time (PERF.md PB8).
  const agent = spawn(
    process.execPath,
    [
      join(root, "packages/agent/dist/cli.mjs"),
      "run",
      "--data-dir",
      join(dataDir, "agent"),
      "--root",
      hostRoot,
      "--port",
      String(agentPort),
      "--sample-interval-ms",
      String(sampleIntervalMs),
    ],
    {
      cwd: root,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...env, DATABASE_URL: db.url, MIRRORPLANE_AGENT_TOKEN: token },
    },
  );
  watch("agent", agent);

  if (demoOn) {
    const demoTokenFile = join(dataDir, "demo-token");
    await writeFile(demoTokenFile, `${token}\n`, { mode: 0o600 });
    const demo = spawn(
      process.execPath,
      [
        join(root, "packages/simulator/dist/cli.mjs"),
        "demo",
        "--data-dir",
        join(dataDir, "demo"),
        "--token-file",
        demoTokenFile,
        "--port",
        String(Number(env.MIRRORPLANE_DEMO_PORT ?? agentPort + 1)),
        "--sample-interval-ms",
        String(sampleIntervalMs),
        "--database-url",
        db.url,
      ],
      { cwd: root, stdio: ["ignore", "inherit", "inherit"], env },
    );
    children.push({ name: "demo", proc: demo });
    demo.on("exit", (code, signal) => {
      if (!stopping) say(`demo cluster exited (${signal ?? code}); the rest keeps running`);
    });
    say("demo cluster: 3 simulated agents, mirrors db-primary, logs, scratch under write load");
  }

  const web = spawn(
    process.execPath,
    // apps/web/server.mjs: Next's handler behind a server that reports the TCP peer
    // (forwarded headers are believed only from MIRRORPLANE_TRUSTED_PROXIES).
    [join(root, "apps/web/server.mjs"), "--port", String(webPort), "--hostname", webHost],
    {
      cwd: join(root, "apps/web"),
      stdio: ["ignore", "inherit", "inherit"],
      env: {
        ...env,
        DATABASE_URL: db.url,
        MIRRORPLANE_AGENT_TOKEN: token,
        BETTER_AUTH_SECRET: authSecret,
        MIRRORPLANE_PUBLIC_URL: publicUrl,
        MIRRORPLANE_TRUSTED_ORIGINS: trusted,
        NODE_ENV: "production",
      },
    },
  );
  watch("web", web);

  const url = `http://127.0.0.1:${webPort}`;
  await waitForHttp(`${url}/nodes`);
  say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  say(`dashboard: ${url}`);
  say(
    "first visit: create the admin account on the sign-in page (or: npm run user:create -- --username <name> --role admin)",
  );
  say("press Ctrl-C to stop");
}

/** A random secret kept (mode 0600) in the data dir, created on first use. */
async function secretFile(path: string, bytes: number): Promise<string> {
  if (!existsSync(path))
    await writeFile(path, `${randomBytes(bytes).toString("base64url")}\n`, { mode: 0o600 });
  return (await readFile(path, "utf8")).trim();
}

function watch(name: string, proc: ChildProcess) {
  children.push({ name, proc });
  proc.on("exit", (code, signal) => {
    if (stopping) return;
    say(`${name} exited unexpectedly (${signal ?? code}); stopping`);
    process.kill(process.pid, "SIGTERM");
  });
}

function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((done) => {
    const force = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    proc.once("exit", () => {
      clearTimeout(force);
      done();
    });
    proc.kill("SIGTERM");
  });
}

async function waitForHttp(url: string, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) return;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s`);
}

main().catch(async (error) => {
  console.error(
    `[mirrorplane] failed to start: ${error instanceof Error ? error.message : String(error)}`,
  );
  stopping = true;
  await Promise.all(children.map(({ proc }) => stopChild(proc)));
  await (await database?.catch(() => null))?.stop().catch(() => {});
  process.exit(1);
});
