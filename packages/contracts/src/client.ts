import type { z } from "zod";
import type { TContract, TProcedureContract } from "./agent-api.ts";

/** How a contract client reaches the server: a query or mutation by its dotted path. */
export interface TContractTransport {
  query(path: string, input: unknown): Promise<unknown>;
  mutation(path: string, input: unknown): Promise<unknown>;
}

type TCall<P extends TProcedureContract> = P["input"] extends z.ZodType
  ? (input: z.input<P["input"]>) => Promise<z.output<P["output"]>>
  : () => Promise<z.output<P["output"]>>;

/** The client of one contract: `client.resync.progress.query({ uuid })`, as tRPC's. */
export type TContractClient<C extends TContract> = {
  readonly [K in keyof C]: C[K] extends TProcedureContract
    ? C[K]["kind"] extends "query"
      ? { readonly query: TCall<C[K]> }
      : { readonly mutate: TCall<C[K]> }
    : C[K] extends TContract
      ? TContractClient<C[K]>
      : never;
};

/** An answer that does not fit the contract's output schema (another agent version, a bug). */
export class ContractAnswerError extends Error {
  override name = "ContractAnswerError";
  constructor(
    readonly path: string,
    readonly issues: readonly z.core.$ZodIssue[],
  ) {
    const first = issues[0];
    super(
      `the answer to ${path} does not fit the contract${
        first ? ` (${first.path.join(".") || "answer"}: ${first.message})` : ""
      }`,
    );
  }
}

function isProcedure(value: TProcedureContract | TContract): value is TProcedureContract {
  return typeof value.kind === "string" && "output" in value;
}

/**
 * A typed client for `contract` over `transport`. Inputs go as they are (the server
 * validates them); every answer is parsed with the procedure's output schema, so what the
 * caller gets is what the contract says (unknown fields dropped, dates as dates) or a
 * ContractAnswerError.
 */
export function createContractClient<C extends TContract>(
  contract: C,
  transport: TContractTransport,
  prefix = "",
): TContractClient<C> {
  const client: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(contract)) {
    const path = prefix + name;
    if (!isProcedure(entry)) {
      client[name] = createContractClient(entry, transport, `${path}.`);
      continue;
    }
    const call = async (input?: unknown) => {
      const answer =
        entry.kind === "query"
          ? await transport.query(path, input)
          : await transport.mutation(path, input);
      const parsed = entry.output.safeParse(answer);
      if (!parsed.success) throw new ContractAnswerError(path, parsed.error.issues);
      return parsed.data;
    };
    client[name] = entry.kind === "query" ? { query: call } : { mutate: call };
  }
  return client as TContractClient<C>;
}
