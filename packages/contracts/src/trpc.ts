import { TRPCError } from "@trpc/server";
import { AppError } from "./errors.ts";

// The one mapping of the application error to tRPC, for both servers (the agent's API and
// the dashboard's): its code is already a tRPC code name (`appErrorCodes`), its message
// what the caller is told. A subpath of its own (`@mirrorplane/contracts/trpc`), so the
// browser-safe entry stays zod only.

export function toTRPCError(error: AppError): TRPCError {
  return new TRPCError({ code: error.code, message: error.message, cause: error });
}

/**
 * The body of each server's error middleware: a procedure that failed with an AppError
 * fails with its tRPC error; every other result passes unchanged.
 * `t.middleware(async ({ next }) => rethrowAppError(await next()))`.
 */
export function rethrowAppError<R extends { ok: true } | { ok: false; error: TRPCError }>(
  result: R,
): R {
  if (!result.ok && result.error.cause instanceof AppError) throw toTRPCError(result.error.cause);
  return result;
}
