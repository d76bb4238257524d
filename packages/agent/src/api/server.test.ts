import { join } from "node:path";
import { createTRPCClient, httpLink } from "@trpc/client";
import { pino } from "pino";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readKhugepaged } from "../collectors/khugepaged.ts";
import type { AgentRouter } from "./router.ts";
import { type AgentApiServer, startApiServer } from "./server.ts";

const token = "test-token-0123456789abcdef";
const fixtureRoot = join(import.meta.dirname, "../../test/fixtures/thp-6.18");

describe("agent tRPC API over real HTTP", () => {
  let server: AgentApiServer;
  beforeAll(async () => {
    server = await startApiServer({
      host: "127.0.0.1",
      port: 0,
      token,
      log: pino({ level: "silent" }),
      services: {
        nodeInfo: () => ({
          nodeId: "n1",
          hostname: "h",
          agentVersion: "0",
          kernelRelease: "6.18",
          root: fixtureRoot,
          startedAt: new Date(0),
          sampleIntervalMs: 1000,
        }),
        readKhugepaged: () => readKhugepaged(fixtureRoot),
      },
    });
  });
  afterAll(() => server.close());

  const url = () => `${server.url}/trpc/khugepaged.current`;

  it("refuses a request without a token with 401", async () => {
    const res = await fetch(url());
    expect(res.status).toBe(401);
    expect(JSON.stringify(await res.json())).not.toContain("pages_to_scan");
  });

  it("refuses a wrong token and a malformed header with 401", async () => {
    for (const authorization of [`Bearer ${token}x`, "Bearer ", token, "Basic abc"]) {
      const res = await fetch(url(), { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
    }
  });

  it("answers with the right token, through the typed client", async () => {
    const client = createTRPCClient<AgentRouter>({
      links: [
        httpLink({
          url: `${server.url}/trpc`,
          transformer: superjson,
          headers: { authorization: `Bearer ${token}` },
        }),
      ],
    });
    const current = await client.khugepaged.current.query();
    expect(current.tunables.pages_to_scan).toBe(4096);
    expect(current.counters.pagesCollapsed).toBe(1234);
    expect(current.readAt).toBeInstanceOf(Date);
    expect((await client.node.info.query()).nodeId).toBe("n1");
  });

  it("does not leak stack traces in errors", async () => {
    const res = await fetch(url());
    expect(JSON.stringify(await res.json())).not.toMatch(/stack|\.ts:/);
  });
});
