import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { PrismaPg } from "@prisma/adapter-pg";
import { bindMigrationAwareSqlAdapterFactory } from "@prisma/driver-adapter-utils";
import type { MigrationList, SchemaEngine } from "@prisma/schema-engine-wasm";
import { migrationsDir as defaultMigrationsDir, schemaPath as defaultSchemaPath } from "./paths.ts";

/**
 * Migrations without network access (STYLE.md): the Prisma CLI downloads a native schema
 * engine before every command, which these machines cannot reach, so we drive Prisma's own
 * schema engine compiled to WebAssembly (`@prisma/schema-engine-wasm`, pinned to the
 * version Prisma 7.10.0's CLI ships with) through the `pg` driver adapter. It writes the
 * normal `_prisma_migrations` table, so `prisma migrate deploy` agrees with it wherever
 * the stock CLI does run.
 */
export interface MigrateOptions {
  migrationsDir?: string;
  schemaPath?: string;
  log?: (line: string) => void;
}

type SchemaEngineClass = typeof SchemaEngine;

/** Node's global WebAssembly (our lib settings do not declare it; Node always has it). */
function wasmApi() {
  return (
    globalThis as unknown as {
      WebAssembly: {
        instantiate(
          bytes: Uint8Array,
          imports: object,
        ): Promise<{ instance: { exports: Record<string, unknown> } }>;
      };
    }
  ).WebAssembly;
}
let engineClass: Promise<SchemaEngineClass> | undefined;

/**
 * The package imports its .wasm as an ES module, which Node 20 cannot load; instantiate
 * it ourselves with the package's own JS glue, exactly as its entry point would.
 */
function loadSchemaEngine(): Promise<SchemaEngineClass> {
  engineClass ??= (async () => {
    const require = createRequire(import.meta.url);
    const entry = require.resolve("@prisma/schema-engine-wasm");
    const glue = await import(join(entry, "..", "schema_engine_bg.js"));
    const bytes = await readFile(join(entry, "..", "schema_engine_bg.wasm"));
    const { instance } = await wasmApi().instantiate(bytes, { "./schema_engine_bg.js": glue });
    glue.__wbg_set_wasm(instance.exports);
    (instance.exports.__wbindgen_start as () => void)();
    return glue.SchemaEngine as SchemaEngineClass;
  })();
  return engineClass;
}

type PgAdapter = Awaited<ReturnType<PrismaPg["connect"]>>;

interface PgField {
  dataTypeID: number;
}
interface PerformIO {
  performIO(query: unknown): Promise<{ fields: PgField[] }>;
}

/** Postgres's one-byte `"char"` type (pg_catalog columns the engine introspects). */
const pgCharOid = 18;
const pgTextOid = 25;

/**
 * Two gaps between PrismaPg 7.10 and the wasm schema engine, closed here:
 * - executeScript splits on ';' (breaks statements with semicolons inside): send whole;
 * - the adapter has no column type for `"char"`, which the engine's introspection of
 *   pg_catalog returns: it arrives from `pg` as a string, so report it as text.
 */
function forMigrations(adapter: PgAdapter): PgAdapter {
  const underlying = adapter.underlyingDriver() as { query(sql: string): Promise<unknown> };
  adapter.executeScript = async (script: string) => {
    await underlying.query(script);
  };
  const io = adapter as unknown as PerformIO;
  const performIO = io.performIO.bind(adapter);
  io.performIO = async (query) => {
    const result = await performIO(query);
    for (const field of result.fields)
      if (field.dataTypeID === pgCharOid) field.dataTypeID = pgTextOid;
    return result;
  };
  return adapter;
}

async function withEngine<T>(
  url: string,
  schemaFile: string,
  fn: (engine: SchemaEngine, schema: string) => Promise<T>,
  log: (line: string) => void,
): Promise<T> {
  const factory = new PrismaPg({ connectionString: url });
  // The engine never closes what it opens; a connection left open keeps holding Prisma's
  // migration advisory lock and the next engine waits 10 s for it. Close them ourselves.
  const opened: PgAdapter[] = [];
  const track = (adapter: PgAdapter) => {
    opened.push(adapter);
    return forMigrations(adapter);
  };
  const migrationAware = {
    provider: factory.provider,
    adapterName: factory.adapterName,
    connect: async () => track(await factory.connect()),
    connectToShadowDb: async () => track(await factory.connectToShadowDb()),
  };
  const schema = await readFile(schemaFile, "utf8");
  const SchemaEngineWasm = await loadSchemaEngine();
  const engine = await SchemaEngineWasm.new(
    { datamodels: [[schemaFile, schema]] },
    (message: unknown) => log(typeof message === "string" ? message : JSON.stringify(message)),
    bindMigrationAwareSqlAdapterFactory(migrationAware as never),
  );
  try {
    return await fn(engine, schema);
  } finally {
    engine.free();
    await Promise.allSettled(opened.map((adapter) => adapter.dispose()));
  }
}

async function loadMigrations(dir: string): Promise<MigrationList> {
  await mkdir(dir, { recursive: true });
  const lockPath = join(dir, "migration_lock.toml");
  const entries = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  return {
    baseDir: dir,
    lockfile: {
      path: "migration_lock.toml",
      content: existsSync(lockPath) ? await readFile(lockPath, "utf8") : null,
    },
    shadowDbInitScript: "",
    migrationDirectories: await Promise.all(
      entries.map(async (name) => {
        const file = join(dir, name, "migration.sql");
        return {
          path: name,
          migrationFile: {
            path: "migration.sql",
            content: existsSync(file)
              ? { tag: "ok" as const, value: await readFile(file, "utf8") }
              : { tag: "error" as const, value: `missing ${file}` },
          },
        };
      }),
    ),
  };
}

const noFilters = { externalTables: [], externalEnums: [] };

/** Applies every pending migration; returns the names applied (empty when up to date). */
export async function applyMigrations(url: string, options: MigrateOptions = {}) {
  const log = options.log ?? (() => {});
  const dir = options.migrationsDir ?? defaultMigrationsDir;
  return withEngine(
    url,
    options.schemaPath ?? defaultSchemaPath,
    async (engine) => {
      const { appliedMigrationNames } = await engine.applyMigrations({
        migrationsList: await loadMigrations(dir),
        filters: noFilters,
      });
      return appliedMigrationNames;
    },
    log,
  );
}

/**
 * Writes a new migration directory with the SQL that takes a database holding the
 * existing migrations to `schema.prisma` (like `prisma migrate dev --create-only`).
 * `scratchUrl` must point at an empty database this function may migrate: the wasm engine
 * has no built-in shadow database for Postgres, so the caller provides one.
 */
export async function createMigration(
  scratchUrl: string,
  name: string,
  options: MigrateOptions = {},
): Promise<string | null> {
  const log = options.log ?? (() => {});
  const dir = options.migrationsDir ?? defaultMigrationsDir;
  const schemaFile = options.schemaPath ?? defaultSchemaPath;
  await applyMigrations(scratchUrl, options);
  return withEngine(
    scratchUrl,
    schemaFile,
    async (engine, schema) => {
      const files = [{ path: schemaFile, content: schema }];
      const { stdout } = await engine.diff({
        from: { tag: "schemaDatasource", files, configDir: dir },
        to: { tag: "schemaDatamodel", files },
        script: true,
        exitCode: null,
        filters: noFilters,
      });
      if (!stdout || /^-- This is an empty migration\.?\s*$/.test(stdout.trim())) return null;
      const stamp = new Date().toISOString().replace(/\D/g, "").slice(0, 14);
      const generated = `${stamp}_${name.replace(/[^a-zA-Z0-9_]/g, "_")}`;
      await mkdir(join(dir, generated), { recursive: true });
      await writeFile(join(dir, generated, "migration.sql"), stdout);
      const lock = join(dir, "migration_lock.toml");
      if (!existsSync(lock)) {
        await writeFile(
          lock,
          '# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = "postgresql"\n',
        );
      }
      return generated;
    },
    log,
  );
}
