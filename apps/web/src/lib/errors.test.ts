import { describe, expect, it } from "vitest";
import { z } from "zod";
import { describeIssues, errorMessage, trpcErrorCode } from "./errors";

const issuesOf = (schema: z.ZodType, value: unknown) => {
  const r = schema.safeParse(value);
  if (r.success) throw new Error("expected a failure");
  return r.error.issues;
};

describe("errors a person reads", () => {
  it("a validation error is sentences, not zod JSON", () => {
    const schema = z
      .object({
        first: z.number().int().min(0).optional(),
        last: z.number().int().min(0).optional(),
        value: z.string().min(1),
        severity: z.enum(["critical", "error"]).optional(),
      })
      .refine((r) => (r.first ?? 0) <= (r.last ?? 0), "first must not be after last");
    const issues = issuesOf(schema, { first: -1, value: "", severity: "loud" });
    const text = describeIssues(issues);
    expect(text).toContain("“first” must be at least 0.");
    expect(text).toContain("“value” must not be empty.");
    expect(text).toContain("“severity” must be one of critical, error.");
    expect(text).not.toMatch(/[[{]/);
    expect(errorMessage({ message: JSON.stringify(issues) })).toBe(text);
    expect(describeIssues(issuesOf(schema, { first: 5, last: 2, value: "x" }))).toBe(
      "First must not be after last.",
    );
    expect(describeIssues(issuesOf(z.object({ regionsPerSecond: z.number() }), {}))).toBe(
      "“regions per second” is required.",
    );
    // A message the schema's author wrote is kept.
    expect(
      describeIssues(issuesOf(z.object({ reason: z.string().min(3, "say why") }), { reason: "" })),
    ).toBe("“reason”: say why.");
  });

  it("network failures and bare codes say what they mean; our sentences pass through", () => {
    expect(errorMessage(new TypeError("Failed to fetch"))).toMatch(/cannot be reached/);
    expect(errorMessage({ message: "needs the operator role; you are viewer" })).toBe(
      "Needs the operator role; you are viewer.",
    );
    expect(errorMessage({ message: "", data: { code: "UNAUTHORIZED" } })).toMatch(/sign in/);
  });

  it("reads the tRPC code wherever it is carried", () => {
    expect(trpcErrorCode({ data: { code: "NOT_IMPLEMENTED" } })).toBe("NOT_IMPLEMENTED");
    expect(trpcErrorCode({ code: "FORBIDDEN" })).toBe("FORBIDDEN");
    expect(trpcErrorCode({ shape: { data: { code: "CONFLICT" } } })).toBe("CONFLICT");
    expect(trpcErrorCode({ data: { code: "made-up" } })).toBeNull();
    expect(trpcErrorCode(new Error("x"))).toBeNull();
    expect(trpcErrorCode(null)).toBeNull();
  });
});
