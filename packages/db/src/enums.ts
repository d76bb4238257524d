// Enums and types that are safe to import from browser code (no Prisma runtime).

export type { Role as TRole, Severity as TSeverity } from "./generated/prisma/enums.ts";
export { Role, Severity } from "./generated/prisma/enums.ts";
