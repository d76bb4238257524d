import { AppError, type TAppErrorCode } from "@mirrorplane/contracts";
import type { Db } from "@mirrorplane/db";
import type { ContextUser } from "../trpc";

/** What an audit row needs of the call's context. */
export interface TAuditContext {
  db: Db;
  user: ContextUser | null;
  /** Rows written during this call (server/trpc.ts's refusal guard reads it). */
  auditTrail?: { written: number };
}

/** Who did what to what, with which parameters (the outcome and detail come with it). */
export interface TAuditEntry {
  action: string;
  target: string;
  params?: unknown;
}

/** Writes the audit row every mutation owes (ARCHITECTURE.md: who, what, parameters, result). */
export async function audit(
  ctx: TAuditContext,
  entry: TAuditEntry & { outcome: "ok" | "refused" | "failed"; detail?: string },
): Promise<void> {
  const row = (userId: string | null) =>
    ctx.db.auditAction.create({
      data: {
        userId,
        actor: ctx.user?.username ?? "anonymous",
        action: entry.action,
        target: entry.target,
        params: (entry.params ?? {}) as object,
        outcome: entry.outcome,
        detail: entry.detail ?? null,
      },
      select: { id: true },
    });
  try {
    await row(ctx.user?.id ?? null);
  } catch (error) {
    // A session whose user row is gone (deleted meanwhile) is still audited, by name.
    if (prismaErrorCode(error) !== "P2003" || !ctx.user) throw error;
    await row(null);
  }
  if (ctx.auditTrail) ctx.auditTrail.written++;
}

/** Prisma's own error code (`P2003`: a foreign key points nowhere), or null. */
function prismaErrorCode(error: unknown): string | null {
  if (typeof error !== "object" || error === null || !("code" in error)) return null;
  return typeof error.code === "string" ? error.code : null;
}

/** What the audit row says of a refusal, where it differs from what the caller is told. */
interface TAuditNote {
  detail?: string;
  params?: unknown;
}
const notes = new WeakMap<AppError, TAuditNote>();

/**
 * A refusal (or failure) to throw from inside `audited`: the caller is told `message`; the
 * audit row records `note.detail` (else the message) and `note.params` (else the entry's).
 */
export function refusal(code: TAppErrorCode, message: string, note?: TAuditNote): AppError {
  const error = new AppError(code, message);
  if (note) notes.set(error, note);
  return error;
}

/** The audit row's outcome, detail and parameters for an application error. */
export function auditedOutcome(error: AppError, entry: TAuditEntry) {
  const note = notes.get(error);
  return {
    outcome: error.outcome,
    detail: note?.detail ?? error.message,
    params: note && "params" in note ? note.params : entry.params,
  };
}

/**
 * The one audited path for every change the dashboard makes (an agent's mutation, a user
 * admin's change): runs `change` and writes the audit row either way. Done: `ok`, with
 * what `done(result)` adds or changes (a detail, the action, target or parameters, another
 * actor). An AppError
 * (a refusal, or an agent's failure): `refused`/`failed` with its reason, then rethrown.
 * Anything else is rethrown unaudited here: the refusal guard (server/trpc.ts) writes it.
 */
export async function audited<T>(
  ctx: TAuditContext,
  entry: TAuditEntry,
  change: () => Promise<T>,
  done?: (
    result: T,
  ) => (Partial<TAuditEntry> & { detail?: string; as?: TAuditContext }) | undefined,
): Promise<T> {
  let result: T;
  try {
    result = await change();
  } catch (error) {
    if (error instanceof AppError) await audit(ctx, { ...entry, ...auditedOutcome(error, entry) });
    throw error;
  }
  const { detail, as, ...changed } = done?.(result) ?? {};
  await audit(as ?? ctx, {
    ...entry,
    ...changed,
    outcome: "ok",
    ...(detail ? { detail } : {}),
  });
  return result;
}
