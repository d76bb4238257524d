export { type CreateDbOptions, createDb, type Db } from "./client.ts";
export { Role, Severity } from "./enums.ts";
export type { AuditAction, Event, Node, Prisma, Sample, User } from "./generated/prisma/client.ts";
export { type ResolvedDatabase, resolveDatabase } from "./resolve.ts";
