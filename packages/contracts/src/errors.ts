/**
 * The tRPC error codes an agent's API answers with, and what each means there. A caller
 * can rely on these; anything else (INTERNAL_SERVER_ERROR, a timeout) is a failure.
 */
export const agentErrorCodes = {
  /** No bearer token, or not the cluster token (HTTP 401, before any handler runs). */
  UNAUTHORIZED: "missing or wrong cluster token",
  /** The input does not fit the schema, or the kernel would refuse the value. */
  BAD_REQUEST: "refused: invalid input or a value the kernel would refuse",
  /** No such mirror (log) on this agent's replica. */
  NOT_FOUND: "no such mirror on this agent",
  /** The mirror's state does not allow it now (a resync already runs). */
  CONFLICT: "not now: the mirror's state does not allow it",
  /** This agent does not run the part that answers it (no cluster-log server, no pipeline). */
  NOT_IMPLEMENTED: "this agent does not provide it",
} as const;
export type TAgentErrorCode = keyof typeof agentErrorCodes;

/** Refusals of a request for its content: the dashboard passes them on to the operator as they are. */
export const agentRefusalCodes = [
  "BAD_REQUEST",
  "CONFLICT",
  "NOT_FOUND",
] as const satisfies readonly TAgentErrorCode[];
export type TAgentRefusalCode = (typeof agentRefusalCodes)[number];

export function isAgentRefusal(code: string | null | undefined): code is TAgentRefusalCode {
  return (agentRefusalCodes as readonly (string | null | undefined)[]).includes(code);
}

/**
 * Every code an application error (the dashboard's, or an agent's) carries: the agent's
 * codes plus the dashboard's own refusals (role, guard, throttling) and failures of an
 * agent behind it. They are tRPC's code names, so each server maps them in one place.
 */
export const appErrorCodes = [
  ...(Object.keys(agentErrorCodes) as TAgentErrorCode[]),
  "FORBIDDEN",
  "PRECONDITION_FAILED",
  "TOO_MANY_REQUESTS",
  "BAD_GATEWAY",
] as const satisfies readonly TAppErrorCode[];
export type TAppErrorCode =
  | TAgentErrorCode
  | "FORBIDDEN"
  | "PRECONDITION_FAILED"
  | "TOO_MANY_REQUESTS"
  | "BAD_GATEWAY";

/**
 * The one application error: a code from `appErrorCodes` and a sentence for the person
 * who asked. Domain code throws it; the server's tRPC setup turns it into a TRPCError.
 */
export class AppError extends Error {
  override readonly name = "AppError";
  readonly code: TAppErrorCode;
  constructor(code: TAppErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** A refusal of the request (the caller can act on it), or a failure behind it. */
  get outcome(): "refused" | "failed" {
    return this.code === "BAD_GATEWAY" ? "failed" : "refused";
  }
}
