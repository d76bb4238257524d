import type { AddressInfo } from "node:net";
import { createHTTPServer } from "@trpc/server/adapters/standalone";
import type { Logger } from "pino";
import { agentRouter } from "./router.ts";
import { type AgentServices, bearerToken, createContextInner } from "./trpc.ts";

export interface AgentApiServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves the agent's tRPC API over HTTP at `/trpc`. */
export async function startApiServer(options: {
  host: string;
  port: number;
  token: string;
  services: AgentServices;
  log: Logger;
}): Promise<AgentApiServer> {
  const server = createHTTPServer({
    basePath: "/trpc/",
    router: agentRouter,
    createContext: ({ req }) =>
      createContextInner({
        presentedToken: bearerToken(req.headers.authorization),
        expectedToken: options.token,
        services: options.services,
      }),
    onError: ({ error, path }) => {
      if (error.code === "UNAUTHORIZED")
        options.log.warn({ path }, "refused API call: %s", error.message);
      else if (error.code === "INTERNAL_SERVER_ERROR")
        options.log.error({ err: error, path }, "API error");
    },
  });
  // Keep-alive sockets would hold close() open; a drained agent answers nothing new.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
