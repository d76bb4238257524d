import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (this file is packages/db/src/paths.ts). */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const schemaPath = join(repoRoot, "prisma", "schema.prisma");
export const migrationsDir = join(repoRoot, "prisma", "migrations");
