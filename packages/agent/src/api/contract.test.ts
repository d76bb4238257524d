import { agentApi, type TContract, type TProcedureContract } from "@mirrorplane/contracts";
import { describe, expect, it } from "vitest";
import { agentRouter } from "./router.ts";

// The dashboard knows the agent only through the contract: every procedure the router
// serves must be in it with the same kind, and checked with the contract's own schemas.

function contractProcedures(c: TContract, prefix = ""): Map<string, TProcedureContract> {
  const out = new Map<string, TProcedureContract>();
  for (const [name, entry] of Object.entries(c)) {
    if (typeof entry.kind === "string" && "output" in entry)
      out.set(prefix + name, entry as TProcedureContract);
    else
      for (const [k, v] of contractProcedures(entry as TContract, `${prefix}${name}.`))
        out.set(k, v);
  }
  return out;
}

interface TServedDef {
  type: string;
  inputs: unknown[];
  output?: unknown;
}

describe("the agent's router and the contract", () => {
  // At run time the router keeps its procedures flat, by dotted path.
  const served = agentRouter._def.procedures as unknown as Record<string, { _def: TServedDef }>;
  const contract = contractProcedures(agentApi);

  it("serves exactly the contract's procedures, each as its kind", () => {
    expect(
      Object.fromEntries(Object.entries(served).map(([path, p]) => [path, p._def.type])),
    ).toEqual(Object.fromEntries([...contract].map(([path, p]) => [path, p.kind])));
  });

  it("validates each input and output with the contract's schema", () => {
    for (const [path, p] of contract) {
      const def = served[path]!._def;
      expect(def.output, path).toBe(p.output);
      expect(def.inputs, path).toEqual(p.input ? [p.input] : []);
    }
  });
});
