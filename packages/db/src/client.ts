import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "./generated/prisma/client.ts";

export type Db = PrismaClient;

export interface CreateDbOptions {
  /** Max connections in this process's pool. */
  poolSize?: number;
}

/**
 * The one way code in this repository gets a database client (STYLE.md §5): Prisma 7
 * with the `pg` driver adapter. Callers own the client and must `$disconnect()` it.
 */
export function createDb(url: string, options: CreateDbOptions = {}): Db {
  const adapter = new PrismaPg({
    connectionString: url,
    max: options.poolSize ?? 10,
    // A database that goes away must surface as an error to the caller, not a hang.
    connectionTimeoutMillis: 5_000,
  });
  return new PrismaClient({ adapter });
}
