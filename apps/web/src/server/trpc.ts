import type { Db } from "@mirrorplane/db";
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { ZodError, z } from "zod";
import type { AgentDirectory } from "./agents";
import type { TRequestOrigin } from "./origin-check";

export type TRoleName = "viewer" | "operator" | "admin";

export interface ContextUser {
  id: string;
  username: string;
  role: TRoleName;
}

/** Everything a procedure may use; testable without an HTTP request (STYLE.md §4). */
export interface ContextInner {
  db: Db;
  agents: AgentDirectory;
  now: () => Date;
  /** The signed-in user, or null. */
  user: ContextUser | null;
  /**
   * The HTTP request behind the call (route handler only; absent for server-side callers):
   * where it came from, for the origin guard and the audit log.
   */
  request?: { origin: TRequestOrigin; client: string | null };
}

export function createContextInner(ctx: ContextInner): ContextInner {
  return ctx;
}

const t = initTRPC.context<ContextInner>().create({
  transformer: superjson,
  isDev: false,
  errorFormatter: ({ shape, error }) => ({
    ...shape,
    data: {
      ...shape.data,
      zodError: error.cause instanceof ZodError ? z.flattenError(error.cause) : null,
    },
  }),
});

export const createTRPCRouter = t.router;
export const createCallerFactory = t.createCallerFactory;

/**
 * Mutations only from this dashboard's own pages (server/origin-check.ts): a forged
 * cross-site request is refused with 403 before anything else runs, and audited.
 */
const originGuard = t.middleware(async ({ ctx, type, path, next }) => {
  if (type === "mutation" && ctx.request && !ctx.request.origin.trusted) {
    await audit(ctx, {
      action: path,
      target: "api",
      params: { origin: ctx.request.origin.origin, client: ctx.request.client },
      outcome: "refused",
      detail: `cross-origin: ${ctx.request.origin.reason}`,
    });
    throw new TRPCError({
      code: "FORBIDDEN",
      message: "Refused: changes are accepted only from the dashboard's own pages.",
    });
  }
  return next();
});
const base = t.procedure.use(originGuard);

/** Only what a signed-out browser needs (session state, the first-run step). */
export const publicProcedure = base;

const rank: Record<TRoleName, number> = { viewer: 0, operator: 1, admin: 2 };

/** Auth is middleware that narrows the context: handlers never check for a user. */
function requireRole(minimum: TRoleName) {
  return t.middleware(({ ctx, next }) => {
    if (!ctx.user) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
    if (rank[ctx.user.role] < rank[minimum]) {
      throw new TRPCError({
        code: "FORBIDDEN",
        message: `needs the ${minimum} role; you are ${ctx.user.role}`,
      });
    }
    return next({ ctx: { ...ctx, user: ctx.user } });
  });
}

export const protectedProcedure = base.use(requireRole("viewer"));
export const operatorProcedure = base.use(requireRole("operator"));
export const adminProcedure = base.use(requireRole("admin"));

/** Writes the audit row every mutation owes (ARCHITECTURE.md: who, what, parameters, result). */
export async function audit(
  ctx: { db: Db; user: ContextUser | null },
  entry: {
    action: string;
    target: string;
    params?: unknown;
    outcome: "ok" | "refused" | "failed";
    detail?: string;
  },
): Promise<void> {
  await ctx.db.auditAction.create({
    data: {
      userId: ctx.user?.id ?? null,
      actor: ctx.user?.username ?? "anonymous",
      action: entry.action,
      target: entry.target,
      params: (entry.params ?? {}) as object,
      outcome: entry.outcome,
      detail: entry.detail ?? null,
    },
    select: { id: true },
  });
}
