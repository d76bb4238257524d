// The database facade (STYLE.md §5). Server-only: browser code imports "@mirrorplane/db/enums".
// Starting an embedded Postgres lives in "@mirrorplane/db/embedded", so the web app never
// pulls the Postgres binaries into its bundle.

export { type CreateDbOptions, createDb, type Db } from "./client.ts";
export { Role, Severity } from "./enums.ts";
export type { AuditAction, Event, Node, Prisma, Sample, User } from "./generated/prisma/client.ts";
