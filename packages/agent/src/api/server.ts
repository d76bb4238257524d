import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createHTTPHandler } from "@trpc/server/adapters/standalone";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { agentRouter } from "./router.ts";
import { type AgentServices, bearerToken, createContextInner, tokensMatch } from "./trpc.ts";

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
  /** Served at `/metrics` (Prometheus text format) when given. */
  metrics?: Registry | undefined;
  /** Whether `/metrics` needs the bearer token too (default true). */
  metricsRequireToken?: boolean | undefined;
}): Promise<AgentApiServer> {
  const trpc = createHTTPHandler({
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
  const metrics = options.metrics;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (metrics && path === "/metrics") {
      const presented = bearerToken(req.headers.authorization);
      if (
        options.metricsRequireToken !== false &&
        (presented === null || !tokensMatch(presented, options.token))
      ) {
        res.writeHead(401, { "content-type": "text/plain", "www-authenticate": "Bearer" });
        res.end("missing or invalid bearer token\n");
        return;
      }
      metrics.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": metrics.contentType });
          res.end(text);
        },
        (error: unknown) => {
          options.log.error({ err: error }, "metrics collection failed");
          res.writeHead(500).end();
        },
      );
      return;
    }
    trpc(req, res);
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
