import type { TRPC_ERROR_CODE_KEY } from "@trpc/server/rpc";

// One place that reads errors: the tRPC code of any error (a TRPCClientError in the browser,
// an agent's error on the server), and the sentence a person is shown for it. Validation
// errors are zod issues; their default text is JSON, which no one should have to read.

const codes = new Set<string>([
  "PARSE_ERROR",
  "BAD_REQUEST",
  "INTERNAL_SERVER_ERROR",
  "NOT_IMPLEMENTED",
  "BAD_GATEWAY",
  "SERVICE_UNAVAILABLE",
  "GATEWAY_TIMEOUT",
  "UNAUTHORIZED",
  "PAYMENT_REQUIRED",
  "FORBIDDEN",
  "NOT_FOUND",
  "METHOD_NOT_SUPPORTED",
  "TIMEOUT",
  "CONFLICT",
  "PRECONDITION_FAILED",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "UNPROCESSABLE_CONTENT",
  "PRECONDITION_REQUIRED",
  "TOO_MANY_REQUESTS",
  "CLIENT_CLOSED_REQUEST",
]);

/** The tRPC error code carried by `error` (client or server side), or null. */
export function trpcErrorCode(error: unknown): TRPC_ERROR_CODE_KEY | null {
  if (typeof error !== "object" || error === null) return null;
  const own = (error as { code?: unknown }).code;
  if (typeof own === "string" && codes.has(own)) return own as TRPC_ERROR_CODE_KEY;
  const data = (error as { data?: unknown }).data;
  if (typeof data === "object" && data !== null) {
    const code = (data as { code?: unknown }).code;
    if (typeof code === "string" && codes.has(code)) return code as TRPC_ERROR_CODE_KEY;
  }
  const shape = (error as { shape?: { data?: { code?: unknown } } }).shape;
  const c = shape?.data?.code;
  return typeof c === "string" && codes.has(c) ? (c as TRPC_ERROR_CODE_KEY) : null;
}

/** The fields of a zod (v4) issue read here. */
export interface TIssue {
  code: string;
  path: ReadonlyArray<PropertyKey>;
  message: string;
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
  expected?: string;
  values?: ReadonlyArray<unknown>;
  format?: string;
  keys?: ReadonlyArray<string>;
}

/** Field names as words: `regionsPerSecond` → "regions per second". */
export function fieldLabel(path: ReadonlyArray<PropertyKey>): string {
  const parts = path
    .filter((p) => typeof p !== "number")
    .map((p) =>
      String(p)
        .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
        .replace(/[_-]+/g, " ")
        .toLowerCase(),
    );
  return parts.length ? `“${parts.join(" ")}”` : "the request";
}

function limit(issue: TIssue, bound: "minimum" | "maximum"): string {
  const n = Number(issue[bound]);
  return Number.isFinite(n) ? n.toLocaleString("en-US") : String(issue[bound]);
}

/** One issue as a sentence (no trailing full stop). */
/** zod's own wording (JSON-ish, for developers); anything else was written for people. */
const zodDefault =
  /^(Too (small|big)|Invalid|Expected|Unrecognized|Required|Number must|String must|Array must)/;

export function issueSentence(issue: TIssue): string {
  const label = fieldLabel(issue.path);
  // A message a schema author wrote ("say why…") says it best.
  if (issue.code !== "custom" && issue.message && !zodDefault.test(issue.message))
    return issue.path.length ? `${label}: ${issue.message}` : issue.message;
  switch (issue.code) {
    case "too_small":
      if (issue.origin === "string")
        return Number(issue.minimum) <= 1
          ? `${label} must not be empty`
          : `${label} must be at least ${limit(issue, "minimum")} characters`;
      if (issue.origin === "array")
        return `${label} needs at least ${limit(issue, "minimum")} item${Number(issue.minimum) === 1 ? "" : "s"}`;
      return issue.inclusive === false
        ? `${label} must be more than ${limit(issue, "minimum")}`
        : `${label} must be at least ${limit(issue, "minimum")}`;
    case "too_big":
      if (issue.origin === "string")
        return `${label} must be at most ${limit(issue, "maximum")} characters`;
      if (issue.origin === "array")
        return `${label} takes at most ${limit(issue, "maximum")} items`;
      return issue.inclusive === false
        ? `${label} must be less than ${limit(issue, "maximum")}`
        : `${label} must be at most ${limit(issue, "maximum")}`;
    case "invalid_type":
      if (/received undefined/.test(issue.message)) return `${label} is required`;
      if (issue.expected === "int") return `${label} must be a whole number`;
      return `${label} must be ${/^[aeiou]/.test(issue.expected ?? "") ? "an" : "a"} ${issue.expected ?? "value of the right kind"}`;
    case "not_multiple_of":
      return `${label} must be a whole number`;
    case "invalid_value":
    case "invalid_enum_value":
      return issue.values?.length
        ? `${label} must be one of ${issue.values.map((v) => String(v)).join(", ")}`
        : `${label} has a value that is not allowed`;
    case "invalid_format":
      return `${label} is not a valid ${issue.format ?? "value"}`;
    case "unrecognized_keys":
      return `${label} has unknown field${(issue.keys?.length ?? 0) === 1 ? "" : "s"} ${issue.keys?.join(", ") ?? ""}`.trim();
    default:
      // Our own refinements already speak in sentences ("first must not be after last").
      return issue.path.length ? `${label}: ${issue.message}` : issue.message;
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** Every issue, as one or more sentences. */
export function describeIssues(issues: ReadonlyArray<TIssue>): string {
  if (issues.length === 0) return "The request was not valid.";
  return issues.map((i) => `${capitalize(issueSentence(i))}.`).join(" ");
}

function looksLikeIssues(v: unknown): v is TIssue[] {
  return (
    Array.isArray(v) &&
    v.length > 0 &&
    v.every((i) => typeof i === "object" && i !== null && "code" in i && "path" in i)
  );
}

const codeSentence: Partial<Record<TRPC_ERROR_CODE_KEY, string>> = {
  UNAUTHORIZED: "Your session has ended: sign in again.",
  TOO_MANY_REQUESTS: "Too many attempts: wait a minute and try again.",
  INTERNAL_SERVER_ERROR: "The dashboard server failed on this request; the error is in its log.",
  TIMEOUT: "The request took too long: try again.",
};

/**
 * The sentence to show for `error`: a validation error's issues in words, a raw network
 * failure as what it means, anything else its own message (our routers write sentences).
 */
export function errorMessage(error: unknown): string {
  if (error === null || error === undefined) return "Something went wrong.";
  const message =
    typeof error === "string"
      ? error
      : typeof (error as { message?: unknown }).message === "string"
        ? (error as { message: string }).message
        : String(error);
  const trimmed = message.trim();
  if (trimmed.startsWith("[") || trimmed.startsWith("{")) {
    try {
      const parsed = JSON.parse(trimmed) as unknown;
      if (looksLikeIssues(parsed)) return describeIssues(parsed);
    } catch {
      // not JSON: fall through
    }
  }
  if (/^(Failed to fetch|NetworkError|Load failed|fetch failed)/i.test(trimmed))
    return "The dashboard server cannot be reached: check the connection and try again.";
  const code = trpcErrorCode(error);
  if (code && codeSentence[code] && (trimmed === "" || trimmed === code))
    return codeSentence[code]!;
  if (trimmed === "") return "Something went wrong.";
  return /[.!?)]$/.test(trimmed) ? capitalize(trimmed) : `${capitalize(trimmed)}.`;
}
