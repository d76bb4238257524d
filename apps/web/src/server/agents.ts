import "server-only";
import { agentApi, createContractClient, type TContractClient } from "@mirrorplane/contracts";
import { createTRPCUntypedClient, httpLink } from "@trpc/client";
import superjson from "superjson";

/**
 * An agent's API as the contract (@mirrorplane/contracts) describes it: the dashboard needs
 * none of the daemon's code, and every answer is checked against the contract's output
 * schema (an agent of another version that answers outside it is an error saying so).
 */
export type AgentClient = TContractClient<typeof agentApi>;

/** Reaches agents through their tRPC API with the cluster token (ARCHITECTURE.md). */
export interface AgentDirectory {
  client(apiUrl: string): AgentClient;
}

export function createAgentDirectory(token: string, timeoutMs = 3_000): AgentDirectory {
  const clients = new Map<string, AgentClient>();
  return {
    client(apiUrl) {
      let client = clients.get(apiUrl);
      if (!client) {
        const trpc = createTRPCUntypedClient({
          links: [
            httpLink({
              url: `${apiUrl.replace(/\/$/, "")}/trpc`,
              transformer: superjson,
              headers: { authorization: `Bearer ${token}` },
              fetch: (input, init) =>
                fetch(input, { ...init, signal: AbortSignal.timeout(timeoutMs) }),
            }),
          ],
        });
        client = createContractClient(agentApi, {
          query: (path, input) => trpc.query(path, input),
          mutation: (path, input) => trpc.mutation(path, input),
        });
        clients.set(apiUrl, client);
      }
      return client;
    },
  };
}
