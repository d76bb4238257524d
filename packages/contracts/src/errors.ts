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
