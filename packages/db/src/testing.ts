import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dropDatabase, ensureDatabase, startEmbeddedPostgres } from "./embedded.ts";
import { applyMigrations } from "./migrate.ts";

declare module "vitest" {
  export interface ProvidedContext {
    /** URL of the test run's Postgres `postgres` database (test/global-setup.ts). */
    pgAdminUrl: string;
  }
}

/**
 * Test harness: one real Postgres per test run (embedded, in a temp dir, or the server in
 * TEST_DATABASE_URL), a migrated template database, and a fresh database per suite cloned
 * from it, so suites never see each other's rows and can run in parallel.
 */
export const templateDatabase = "mirrorplane_template";

export interface TestPostgres {
  /** URL of the server's `postgres` database (admin). */
  adminUrl: string;
  stop(): Promise<void>;
}

export async function startTestPostgres(options: { port?: number } = {}): Promise<TestPostgres> {
  const external = process.env.TEST_DATABASE_URL;
  let adminUrl: string;
  let stop: () => Promise<void>;
  if (external) {
    const url = new URL(external);
    url.pathname = "/postgres";
    adminUrl = url.toString();
    stop = async () => {};
  } else {
    const dir = await mkdtemp(join(tmpdir(), "mirrorplane-test-pg-"));
    const pg = await startEmbeddedPostgres({
      dir,
      port: options.port ?? 54000 + (process.pid % 1000),
      database: "postgres",
      ephemeral: true,
    });
    adminUrl = pg.urlFor("postgres");
    stop = async () => {
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }
  await dropDatabase(adminUrl, templateDatabase);
  await ensureDatabase(adminUrl, templateDatabase);
  await applyMigrations(withDatabase(adminUrl, templateDatabase));
  return { adminUrl, stop };
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A fresh, migrated database for one suite; drop it with the returned function. */
export async function createTestDatabase(
  adminUrl: string,
  label = "suite",
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `test_${label.replace(/[^a-z0-9_]/gi, "_").toLowerCase()}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const { default: pg } = await import("pg");
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(
      `CREATE DATABASE ${client.escapeIdentifier(name)} TEMPLATE ${client.escapeIdentifier(templateDatabase)}`,
    );
  } finally {
    await client.end();
  }
  return { url: withDatabase(adminUrl, name), drop: () => dropDatabase(adminUrl, name) };
}

export interface BenchPostgres {
  /** The benchmark's scratch directory (Postgres lives in it; the caller may add files). */
  readonly dir: string;
  /** URL of the migrated `bench` database. */
  readonly url: string;
  /** Stops Postgres and removes the directory. */
  stop(): Promise<void>;
}

/**
 * A benchmark's own Postgres: embedded, ephemeral, in a new temp directory named with
 * `prefix`, on `port`, its `bench` database migrated (the agent's and the dashboard's
 * benchmarks, docs/BENCHMARKS.md).
 */
export async function startBenchPostgres(prefix: string, port: number): Promise<BenchPostgres> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const pg = await startEmbeddedPostgres({ dir, port, database: "bench", ephemeral: true });
  await ensureDatabase(pg.urlFor("postgres"), "bench");
  await applyMigrations(pg.url);
  return {
    dir,
    url: pg.url,
    stop: async () => {
      await pg.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
