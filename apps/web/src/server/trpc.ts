import { rethrowAppError } from "@mirrorplane/contracts/trpc";
import type { Db } from "@mirrorplane/db";
import { initTRPC, TRPCError } from "@trpc/server";
import superjson from "superjson";
import { ZodError, z } from "zod";
import { describeIssues, errorMessage, trpcErrorCode } from "~/lib/errors";
import type { AgentDirectory } from "./agents";
import { audit } from "./domain/audit";
import type { LiveHub } from "./live/live-hub";
import type { TRequestOrigin } from "./origin-check";

export type TRoleName = "viewer" | "operator" | "admin";

export interface ContextUser {
  id: string;
  username: string;
  role: TRoleName;
  /** Signed in with a temporary password an admin set: only changing it is allowed. */
  mustChangePassword?: boolean;
}

/** Everything a procedure may use; testable without an HTTP request (STYLE.md §4). */
export interface ContextInner {
  db: Db;
  agents: AgentDirectory;
  now: () => Date;
  /** The signed-in user, or null. */
  user: ContextUser | null;
  /** The process's live hub (server/runtime.ts; absent for server-side callers). */
  live?: LiveHub;
  /**
   * The HTTP request behind the call (route handler only; absent for server-side callers):
   * where it came from, for the origin guard and the audit log.
   */
  request?: { origin: TRequestOrigin; client: string | null };
  /**
   * Audit rows written during this call (set by the refusal guard below): a refusal the
   * handler already audited with its own detail is not audited twice.
   */
  auditTrail?: { written: number };
}

export function createContextInner(ctx: ContextInner): ContextInner {
  return ctx;
}

const t = initTRPC.context<ContextInner>().create({
  transformer: superjson,
  isDev: false,
  // A validation error is told in sentences (lib/errors.ts), never as zod's JSON.
  errorFormatter: ({ shape, error }) => ({
    ...shape,
    message: error.cause instanceof ZodError ? describeIssues(error.cause.issues) : shape.message,
    data: {
      ...shape.data,
      zodError: error.cause instanceof ZodError ? z.flattenError(error.cause) : null,
    },
  }),
});

export { audit };

/** An AppError thrown by a handler fails as its tRPC error (@mirrorplane/contracts/trpc). */
const appErrors = t.middleware(async ({ next }) => rethrowAppError(await next()));

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

const secretKey = /password|secret|token/i;

/** The call's input for the audit row, without secrets. */
function auditParams(raw: unknown): unknown {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return raw ?? {};
  return Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [k, secretKey.test(k) ? "(not recorded)" : v]),
  );
}

function auditTarget(raw: unknown, path: string): string {
  const r = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  if (typeof r.uuid === "string") return `mirror:${r.uuid}`;
  if (typeof r.nodeId === "string") return `node:${r.nodeId}`;
  if (typeof r.username === "string") return `user:${r.username}`;
  return path.split(".")[0] ?? "api";
}

/**
 * Every refused or failed mutation reaches the audit log (README: refusals are recorded):
 * the role check, input validation and the handlers' guards all run inside this one, so
 * whatever refuses a change — and did not audit it with its own detail — is written here.
 */
const refusalAudit = t.middleware(async ({ ctx, type, path, next, getRawInput }) => {
  if (type !== "mutation") return next();
  const auditTrail = { written: 0 };
  const result = await next({ ctx: { ...ctx, auditTrail } });
  if (!result.ok && auditTrail.written === 0) {
    const code = trpcErrorCode(result.error);
    const raw = await getRawInput().catch(() => undefined);
    const refused =
      code === "UNAUTHORIZED" ||
      code === "FORBIDDEN" ||
      code === "BAD_REQUEST" ||
      code === "PRECONDITION_FAILED" ||
      code === "CONFLICT" ||
      code === "NOT_FOUND" ||
      code === "TOO_MANY_REQUESTS";
    try {
      await audit(ctx, {
        action: path,
        target: auditTarget(raw, path),
        params: auditParams(raw),
        outcome: refused ? "refused" : "failed",
        detail:
          result.error.cause instanceof ZodError
            ? describeIssues(result.error.cause.issues)
            : errorMessage(result.error),
      });
    } catch {
      // The refusal itself still reaches the caller; the audit failure is the DB's to report.
    }
  }
  return result;
});
const base = t.procedure.use(originGuard).use(refusalAudit).use(appErrors);

/** Only what a signed-out browser needs (session state, the first-run step). */
export const publicProcedure = base;

export const mustChangePasswordMessage =
  "An admin set a temporary password for this account: choose your own password first.";

const rank: Record<TRoleName, number> = { viewer: 0, operator: 1, admin: 2 };

/** Auth is middleware that narrows the context: handlers never check for a user. */
function requireRole(minimum: TRoleName) {
  return t.middleware(({ ctx, next }) => {
    if (!ctx.user) throw new TRPCError({ code: "UNAUTHORIZED", message: "sign in first" });
    if (ctx.user.mustChangePassword)
      throw new TRPCError({
        code: "FORBIDDEN",
        message: mustChangePasswordMessage,
      });
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
