import "server-only";
import { createDb, type Db } from "@mirrorplane/db";
import { env } from "~/env";

// One client per server process (survives Next's dev-mode module reloads).
const globalForDb = globalThis as unknown as { mirrorplaneDb?: Db };

export function db(): Db {
  globalForDb.mirrorplaneDb ??= createDb(env().DATABASE_URL);
  return globalForDb.mirrorplaneDb;
}
