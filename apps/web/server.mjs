// The dashboard's HTTP server: Next.js's own request handler (the same one `next start`
// uses, with its compression and routing) behind a Node HTTP server that tells the app who
// the TCP peer is. Next copies a client's X-Forwarded-For through unchanged, so without
// this the app could not tell a forwarded address from a forged one
// (src/server/client-address.ts decides what to believe, from MIRRORPLANE_TRUSTED_PROXIES).
//
//   node apps/web/server.mjs [--port 3000] [--hostname 127.0.0.1]
//
// The first SIGTERM/SIGINT stops accepting, lets requests finish (live streams are closed
// after a grace period), then exits; a second one exits at once.
import { createServer } from "node:http";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

export const peerHeader = "x-mirrorplane-peer";

/** Overwrites whatever a client put in the peer header with the socket's remote address. */
export function tagPeer(req) {
  req.headers[peerHeader] = req.socket.remoteAddress ?? "";
}

/** An HTTP server that tags every request with its peer, then hands it to `handle`. */
export function createWebServer(handle) {
  return createServer((req, res) => {
    tagPeer(req);
    handle(req, res);
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: process.env.PORT ?? "3000" },
      hostname: { type: "string", default: "127.0.0.1" },
    },
    strict: true,
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port: not a port number: ${values.port}`);
  const { default: next } = await import("next");
  const app = next({
    dev: false,
    dir: dirname(fileURLToPath(import.meta.url)),
    hostname: values.hostname,
    port,
  });
  await app.prepare();
  const server = createWebServer(app.getRequestHandler());
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, values.hostname, resolve);
  });
  console.log(`[web] listening on http://${values.hostname}:${port}`);

  let stopping = false;
  const stop = (signal) => {
    if (stopping) process.exit(130);
    stopping = true;
    console.log(`[web] ${signal}: stopping`);
    server.close(() => process.exit(0));
    server.closeIdleConnections();
    // Server-sent event streams never end on their own.
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(`[web] failed to start: ${error instanceof Error ? error.message : error}`);
    process.exit(1);
  });
}
