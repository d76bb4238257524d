import { request } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWebServer, peerHeader as serverPeerHeader } from "../../../server.mjs";
import { clientAddress, peerHeader, trustedProxies } from "../client-address";

// server.mjs in front of a handler that reports what the app would see.
describe("server.mjs tells the app who the TCP peer is", () => {
  const server = createWebServer((req, res) => {
    const headers = new Headers(req.headers as Record<string, string>);
    res.end(
      JSON.stringify({
        peer: req.headers[peerHeader],
        client: clientAddress(headers, trustedProxies([])),
      }),
    );
  });
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("uses the app's header name", () => {
    expect(serverPeerHeader).toBe(peerHeader);
  });

  it("overwrites a peer header and ignores forwarded headers a client sends", async () => {
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "/",
          headers: { [peerHeader]: "203.0.113.9", "x-forwarded-for": "198.51.100.1" },
        },
        (res) => {
          let text = "";
          res.on("data", (c) => {
            text += c;
          });
          res.on("end", () => resolve(text));
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(JSON.parse(body)).toEqual({ peer: "127.0.0.1", client: "127.0.0.1" });
  });
});
