import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
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
  const wanted = options.embeddedDir ?? join(repoRoot, ".mirrorplane", "postgres");
  const dir = reachableByPostgresUser(isAbsolute(wanted) ? wanted : join(repoRoot, wanted));
  if (options.log && dir !== wanted) {
    options.log(`${wanted} is not reachable by the postgres user; keeping the cluster in ${dir}`);
  }
  const handle = await startEmbeddedPostgres({
    dir,
    port: options.embeddedPort ?? defaultEmbeddedPort,
    database: options.database ?? "mirrorplane",
    ...(options.log ? { log: options.log } : {}),
  });
  return { url: handle.url, embedded: true, reused: handle.reused, stop: handle.stop };
}

/**
 * As root, the server runs as the `postgres` user, which must be able to traverse every
 * parent of its data directory. A checkout under a private home (/root is 0700) is not:
 * then the cluster lives in /var/tmp/mirrorplane-<hash of the wanted path> instead, the
 * same place on every run, so data is still kept between starts.
 */
function reachableByPostgresUser(dir: string): string {
  if (process.getuid?.() !== 0) return dir;
  for (let parent = dirname(dir); ; parent = dirname(parent)) {
    let mode: number;
    try {
      mode = statSync(parent).mode;
    } catch {
      if (parent === dirname(parent)) break;
      continue; // not created yet: mkdir will create it world-traversable (0755)
    }
    if ((mode & 0o001) === 0) {
      const hash = createHash("sha256").update(dir).digest("hex").slice(0, 12);
      return join("/var/tmp", `mirrorplane-${hash}`, "postgres");
    }
    if (parent === dirname(parent)) break;
  }
  return dir;
}

export { dropDatabase, ensureDatabase, startEmbeddedPostgres } from "./embedded.ts";
