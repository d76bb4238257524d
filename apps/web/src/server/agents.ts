import "server-only";
import type { AgentRouter } from "@mirrorplane/agent";
import { createTRPCClient, httpLink, type TRPCClient } from "@trpc/client";
import superjson from "superjson";

export type AgentClient = TRPCClient<AgentRouter>;

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
        client = createTRPCClient<AgentRouter>({
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
        clients.set(apiUrl, client);
      }
      return client;
    },
  };
}
