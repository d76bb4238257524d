import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, natsServerBinary } from "@mirrorplane/simulator/nats-server";
import { createTRPCClient, httpLink } from "@trpc/client";
import { pino } from "pino";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningAgent, startAgent } from "./agent.ts";
import type { AgentRouter } from "./api/router.ts";
import { writeMemberKeyPair } from "./clusterlog/member-keys.ts";
import { resolveConfig, type TAgentConfigLayer } from "./config/config.ts";

// Issue 14: the NATS connection's state on /metrics and the agent API, against a real
// nats-server that is killed and started again on the same port and store. A Prometheus
// user alerts on mirrorplane_clusterlog_nats_connected == 0; it must say 1, then 0 while
// the server is gone, then 1 again with the reconnect counted.

const token = "metrics-nats-token-0123456789";
const log = pino({ level: "silent" });

describe.skipIf(natsServerBinary() === null)("the order's state on /metrics (real NATS)", () => {
  let nats: NatsServer;
  let dir: string;
  let agent: RunningAgent | null = null;
  beforeAll(async () => {
    nats = await NatsServer.start();
    dir = await mkdtemp(join(tmpdir(), "mp-metrics-nats-"));
    await writeMemberKeyPair(join(dir, "keys"), 1);
  });
  afterAll(async () => {
    await agent?.stop();
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const scrape = async (): Promise<string> => {
    const r = await fetch(`${agent!.apiUrl}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(r.status).toBe(200);
    return r.text();
  };
  /** The value of an unlabelled series (besides the default `node` label), or null. */
  const value = (text: string, name: string): number | null => {
    const m = new RegExp(`^${name}\\{node="metrics-node"\\} (\\S+)$`, "m").exec(text);
    return m ? Number(m[1]) : null;
  };
  /** Scrapes until `name` reads `want` (a condition, not a duration: the bound is for a broken run). */
  const until = async (name: string, want: number): Promise<string> => {
    let text = "";
    for (let i = 0; i < 400; i++) {
      text = await scrape();
      if (value(text, name) === want) return text;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${name} never read ${want}:\n${text}`);
  };

  it("connected 1, 0 while nats-server is gone, 1 again with the reconnect counted", async () => {
    agent = await startAgent(
      await resolveConfig({
        flags: {
          token,
          host: "127.0.0.1",
          port: 0,
          dataDir: join(dir, "agent"),
          nodeId: "metrics-node",
          sampleIntervalMs: 3_600_000,
          kmsg: false,
          clusterLog: {
            socket: join(dir, "clusterlog.sock"),
            connector: "off",
            rearm: "off",
            nodeId: 1,
            nats: nats.url,
            cluster: "metrics_test",
            memberKey: join(dir, "keys", "1.key"),
            memberKeys: join(dir, "keys"),
          } as TAgentConfigLayer["clusterLog"],
        },
        env: {},
      }),
      log,
    );
    const api = createTRPCClient<AgentRouter>({
      links: [
        httpLink({
          url: `${agent.apiUrl}/trpc`,
          transformer: superjson,
          headers: { authorization: `Bearer ${token}` },
        }),
      ],
    });

    const up = await scrape();
    expect(up).toContain('mirrorplane_clusterlog_order{kind="jetstream",node="metrics-node"} 1');
    expect(value(up, "mirrorplane_clusterlog_nats_connected")).toBe(1);
    expect(value(up, "mirrorplane_clusterlog_nats_reconnects_total")).toBe(0);
    expect(value(up, "mirrorplane_clusterlog_nats_disconnected_seconds")).toBe(0);
    expect(value(up, "mirrorplane_clusterlog_order_failed")).toBe(0);
    // Our own node-join was ordered: the stream has moved and NATS stamped it.
    expect(value(up, "mirrorplane_clusterlog_ordered_seq")).toBeGreaterThanOrEqual(1);
    const ordered = value(up, "mirrorplane_clusterlog_last_ordered_timestamp_seconds")!;
    expect(Math.abs(ordered - Date.now() / 1000)).toBeLessThan(60);
    expect(value(up, "mirrorplane_clusterlog_heartbeat_timestamp_seconds")).toBeGreaterThan(0);
    expect((await api.cluster.membership.query()).order).toEqual({
      kind: "jetstream",
      connected: true,
    });

    await nats.kill("SIGTERM");
    const down = await until("mirrorplane_clusterlog_nats_connected", 0);
    expect(value(down, "mirrorplane_clusterlog_nats_disconnected_seconds")).toBeGreaterThan(0);
    expect((await api.cluster.membership.query()).order).toEqual({
      kind: "jetstream",
      connected: false,
    });

    await nats.restart(); // same port and store
    const back = await until("mirrorplane_clusterlog_nats_connected", 1);
    expect(value(back, "mirrorplane_clusterlog_nats_reconnects_total")).toBe(1);
    expect(value(back, "mirrorplane_clusterlog_nats_disconnected_seconds")).toBe(0);
    expect((await api.cluster.membership.query()).order.connected).toBe(true);
  }, 60_000);
});
