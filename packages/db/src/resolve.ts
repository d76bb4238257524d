import { isAbsolute, join } from "node:path";
import { startEmbeddedPostgres } from "./embedded.ts";
import { repoRoot } from "./paths.ts";

export interface ResolveDatabaseOptions {
  /** A server to use; when absent an embedded Postgres is started (or reused). */
  databaseUrl?: string | undefined;
  /** Where the embedded cluster lives; default `<repo>/.mirrorplane/postgres`. */
  embeddedDir?: string | undefined;
  embeddedPort?: number | undefined;
  database?: string | undefined;
  log?: (line: string) => void;
}

export interface ResolvedDatabase {
  url: string;
  embedded: boolean;
  reused: boolean;
  stop(): Promise<void>;
}

export const defaultEmbeddedPort = 54329;

/** DATABASE_URL when given, otherwise the embedded Postgres (README "Configuration"). */
export async function resolveDatabase(
  options: ResolveDatabaseOptions = {},
): Promise<ResolvedDatabase> {
  if (options.databaseUrl) {
    return { url: options.databaseUrl, embedded: false, reused: true, stop: async () => {} };
  }
  const dir = options.embeddedDir ?? join(repoRoot, ".mirrorplane", "postgres");
  const handle = await startEmbeddedPostgres({
    dir: isAbsolute(dir) ? dir : join(repoRoot, dir),
    port: options.embeddedPort ?? defaultEmbeddedPort,
    database: options.database ?? "mirrorplane",
    ...(options.log ? { log: options.log } : {}),
  });
  return { url: handle.url, embedded: true, reused: handle.reused, stop: handle.stop };
}

export { dropDatabase, ensureDatabase, startEmbeddedPostgres } from "./embedded.ts";
