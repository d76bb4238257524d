import { describe, expect, it } from "vitest";
import { agentApi } from "./agent-api.ts";
import { ContractAnswerError, createContractClient } from "./client.ts";

const progress = {
  uuid: "u",
  id: "r1",
  state: "running",
  first: 0,
  last: 9,
  total: 10,
  inSync: 4,
  percent: 40,
  rate: null,
  etaSeconds: null,
  recoveringNode: null,
  recoveringRegion: null,
  throttle: null,
  startedAt: 1,
  endedAt: null,
  logInSync: 4,
  regionCount: 10,
};

function recording(answer: unknown) {
  const calls: Array<[string, string, unknown]> = [];
  const transport = {
    query: async (path: string, input: unknown) => {
      calls.push(["query", path, input]);
      return answer;
    },
    mutation: async (path: string, input: unknown) => {
      calls.push(["mutation", path, input]);
      return answer;
    },
  };
  return { calls, client: createContractClient(agentApi, transport) };
}

describe("contract client", () => {
  it("calls each procedure by its dotted path and kind, with the input as given", async () => {
    const { calls, client } = recording(progress);
    await client.resync.progress.query({ uuid: "u" });
    await client.resync.start.mutate({ uuid: "u", first: 2, actor: "otto" });
    expect(calls).toEqual([
      ["query", "resync.progress", { uuid: "u" }],
      ["mutation", "resync.start", { uuid: "u", first: 2, actor: "otto" }],
    ]);
  });

  it("gives the answer as the output schema reads it: unknown fields dropped", async () => {
    const { client } = recording({ ...progress, addedByANewerAgent: true });
    const answer = await client.resync.progress.query({ uuid: "u" });
    expect(answer).toEqual(progress);
  });

  it("refuses an answer outside the contract, naming the procedure and the field", async () => {
    const { client } = recording({ ...progress, state: "exploded" });
    const call = client.resync.progress.query({ uuid: "u" });
    await expect(call).rejects.toBeInstanceOf(ContractAnswerError);
    await expect(call).rejects.toThrow(/resync\.progress.*state/);
  });
});
