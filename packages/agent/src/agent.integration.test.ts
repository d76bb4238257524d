import { randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createIngestPool, type IngestPool } from "@mirrorplane/db/ingest";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { createTRPCClient, httpLink, TRPCClientError } from "@trpc/client";
import { pino } from "pino";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Kernel } from "../testing/server-harness.ts";
import { TestClient } from "../testing/uapi-client.ts";
import { type RunningAgent, startAgent } from "./agent.ts";
import type { AgentRouter } from "./api/router.ts";
import { resolveConfig, type TAgentConfigLayer } from "./config/config.ts";

const token = "integration-token-0123456789";
const log = pino({ level: "silent" });
const fixtures = join(import.meta.dirname, "../test/fixtures");

async function waitFor<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
  // Waits for a condition, not for a duration: the deadline only bounds a broken run.
  for (let i = 0; i < 400; i++) {
    const value = await probe();
    if (value !== null) return value;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** As root, a write to /dev/kmsg is a kernel log record (one open per line: devkmsg ratelimit). */
async function printk(level: number, text: string): Promise<void> {
  await writeFile("/dev/kmsg", `<${level}>${text}\n`);
}

describe("the agent against real Postgres", () => {
  let database: { url: string; drop(): Promise<void> };
  let pool: IngestPool;
  const dirs: string[] = [];
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "agent_integration");
    pool = createIngestPool(database.url);
  });
  afterAll(async () => {
    await pool.end();
    await database.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const start = async (flags: TAgentConfigLayer, dataDir: string): Promise<RunningAgent> =>
    startAgent(
      await resolveConfig({
        flags: {
          token,
          host: "127.0.0.1",
          port: 0,
          dataDir,
          databaseUrl: database.url,
          sampleIntervalMs: 3_600_000,
          kmsgPollMs: 50,
          coalesceWindowMs: 300,
          ...flags,
        },
        env: {},
      }),
      log,
    );

  const rows = async (sql: string, params: unknown[]) => (await pool.query(sql, params)).rows;

  it.skipIf(process.getuid?.() !== 0)(
    "turns real /dev/kmsg lines into events, once, across a restart",
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "mirrorplane-agent-kmsg-"));
      dirs.push(dataDir);
      const marker = `mp${randomBytes(4).toString("hex")}`;
      const pfn = (0x40000000 + (randomBytes(3).readUIntBE(0, 3) << 4)).toString(16);
      const pfnNext = (n: number) => (Number.parseInt(pfn, 16) + n).toString(16);

      const a = await start({ root: "/" }, dataDir);
      for (let n = 0; n < 3; n++)
        await printk(
          3,
          `Memory failure: 0x${pfnNext(n)}: recovery action for dirty LRU page: Recovered`,
        );
      await printk(
        3,
        `Memory failure: 0x${pfn}: Sending SIGBUS to ${marker}:4242 due to hardware memory corruption`,
      );
      await printk(
        3,
        `I/O error, dev ${marker}, sector 42 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`,
      );

      const range = await waitFor("the coalesced range", async () => {
        const r = await rows(
          "SELECT range_start::text, range_end::text, count, kind, severity, raw_line, kernel_seq, occurred_at FROM events WHERE range_unit = 'pfn' AND range_start = $1",
          [Number.parseInt(pfn, 16)],
        );
        return r.length > 0 ? r : null;
      });
      expect(range).toEqual([
        expect.objectContaining({
          range_end: String(Number.parseInt(pfnNext(2), 16)),
          count: "3",
          kind: "memory_failure",
          severity: "warning",
        }),
      ]);
      // Kernel time converted to wall time: within a minute of now.
      expect(Math.abs((range[0].occurred_at as Date).getTime() - Date.now())).toBeLessThan(60_000);
      await waitFor("the SIGBUS and I/O error events", async () => {
        const r = await rows("SELECT 1 FROM events WHERE raw_line LIKE $1", [`%${marker}%`]);
        return r.length === 2 ? r : null;
      });
      await a.stop();
      const cursor = JSON.parse(await readFile(join(dataDir, "kmsg-cursor.json"), "utf8"));
      expect(cursor.seq).toBeGreaterThan(0);

      const b = await start({ root: "/" }, dataDir);
      await printk(
        3,
        `I/O error, dev ${marker}, sector 43 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0`,
      );
      await waitFor("the event written after the restart", async () => {
        const r = await rows("SELECT 1 FROM events WHERE device = $1 AND range_start = 43", [
          marker,
        ]);
        return r.length === 1 ? r : null;
      });
      await b.events.flush();
      // The restarted agent resumed after its cursor: it re-reported nothing.
      expect(b.events.snapshot().duplicates).toBe(0);
      await b.stop();
      const all = await rows(
        "SELECT kind, data->>'what' AS what, device, range_start::text FROM events WHERE raw_line LIKE $1 ORDER BY kernel_seq",
        [`%${marker}%`],
      );
      expect(all).toEqual([
        { kind: "process_killed", what: "sigbus", device: null, range_start: null },
        { kind: "device_failure", what: "io_error", device: marker, range_start: "42" },
        { kind: "device_failure", what: "io_error", device: marker, range_start: "43" },
      ]);
    },
  );

  it("hosts the cluster-log server: a kernel on its socket, resync control on the API", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "mirrorplane-agent-clusterlog-"));
    dirs.push(dataDir);
    const socket = join(dataDir, "clusterlog.sock");
    const agent = await start(
      {
        nodeId: "cl-node",
        // A layer holds what the user wrote; defaults are filled in when it is resolved.
        clusterLog: { socket, connector: "off", rearm: "off" } as TAgentConfigLayer["clusterLog"],
      },
      dataDir,
    );
    const kernel = new Kernel(await TestClient.connect(socket));
    try {
      await kernel.up("16384 clustered-core 1024 nosync"); // 16 regions, all in sync
      const client = createTRPCClient<AgentRouter>({
        links: [
          httpLink({
            url: `${agent.apiUrl}/trpc`,
            transformer: superjson,
            headers: { authorization: `Bearer ${token}` },
          }),
        ],
      });
      const logs = await client.resync.logs.query();
      expect(logs).toMatchObject([{ uuid: "LVM-test", regionCount: 16, inSync: 16 }]);
      const started = await client.resync.start.mutate({
        uuid: "LVM-test",
        first: 2,
        last: 5,
        actor: "alice",
      });
      expect(started).toMatchObject({ state: "running", total: 4, inSync: 0 });
      // (A real kernel whose hint reached rc asks only after a resume: `rearm`, off here.)
      for (const region of [2, 3, 4, 5]) {
        expect(await kernel.resyncWork()).toEqual([1, region]);
        expect((await kernel.setRegionSync(region, true)).error).toBe(0);
      }
      await client.resync.cancel.mutate({ uuid: "LVM-test" }).catch(() => {});
      expect((await client.resync.logs.query())[0]).toMatchObject({ inSync: 16 });
      // One host, in-process order: its kind on the API and /metrics, and no NATS series
      // (an alert on mirrorplane_clusterlog_nats_connected never fires for it).
      expect((await client.cluster.membership.query()).order).toEqual({
        kind: "in-process",
        connected: true,
      });
      const metrics = await (
        await fetch(`${agent.apiUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      ).text();
      expect(metrics).toContain('mirrorplane_clusterlog_order{kind="in-process",node="cl-node"} 1');
      expect(metrics).not.toContain("mirrorplane_clusterlog_nats_connected");
    } finally {
      kernel.client.destroy();
      await agent.stop();
    }
  });

  it("writes tunables with the kernel's validation, audits them, and serves /metrics", async () => {
    const root = await mkdtemp(join(tmpdir(), "mirrorplane-agent-thp-"));
    dirs.push(root);
    await cp(join(fixtures, "thp-6.18"), root, { recursive: true });
    await cp(join(fixtures, "pmem-dax"), root, { recursive: true });
    await mkdir(join(root, "proc/self"), { recursive: true });
    await writeFile(join(root, "proc/self/smaps"), "KernelPageSize:        4 kB\n");
    const agent = await start({ root, nodeId: "tunable-node" }, join(root, "state"));
    const client = createTRPCClient<AgentRouter>({
      links: [
        httpLink({
          url: `${agent.apiUrl}/trpc`,
          transformer: superjson,
          headers: { authorization: `Bearer ${token}` },
        }),
      ],
    });
    const actor = { id: "u-1", name: "alice" };
    const change = await client.khugepaged.setTunable.mutate({
      name: "khugepaged/pages_to_scan",
      value: 8192,
      actor,
      reason: "faster collapse",
    });
    expect(change).toMatchObject({ name: "khugepaged/pages_to_scan", old: "4096", new: "8192" });
    expect((await client.khugepaged.current.query()).tunables.pages_to_scan).toBe(8192);
    await client.khugepaged.setTunable.mutate({ name: "enabled", value: "always", actor });
    expect((await client.khugepaged.current.query()).thp.enabled).toBe("always");

    const refused = async (name: string, value: string | number) => {
      const error = await client.khugepaged.setTunable
        .mutate({ name, value, actor })
        .catch((e) => e);
      expect(error, `${name}=${value}`).toBeInstanceOf(TRPCClientError);
      expect(error.data?.code, `${name}=${value}`).toBe("BAD_REQUEST");
      return error.message as string;
    };
    expect(await refused("khugepaged/pages_to_scan", 0)).toContain("at least 1");
    expect(await refused("khugepaged/max_ptes_none", 512)).toContain("from 0 to 511");
    expect(await refused("khugepaged/defrag", "2")).toContain("0 or 1");
    expect(await refused("enabled", "sometimes")).toContain("always, madvise, never");
    expect(await refused("../../../../etc/passwd", "x")).toBeTruthy();
    expect((await client.khugepaged.current.query()).tunables.pages_to_scan).toBe(8192);

    await agent.events.flush();
    const audit = await rows(
      "SELECT severity, message, data FROM events WHERE kind = 'tunable_change' AND node_id = 'tunable-node' ORDER BY occurred_at, id",
      [],
    );
    expect(
      audit.map((r) => [r.data.outcome, r.data.tunable, r.data.who.name, r.data.old, r.data.new]),
    ).toEqual([
      ["changed", "khugepaged/pages_to_scan", "alice", "4096", "8192"],
      ["changed", "enabled", "alice", "madvise", "always"],
      ["refused", "khugepaged/pages_to_scan", "alice", "8192", null],
      ["refused", "khugepaged/max_ptes_none", "alice", "511", null],
      ["refused", "khugepaged/defrag", "alice", "1", null],
      ["refused", "enabled", "alice", "always", null],
    ]);
    expect(audit[0].data.reason).toBe("faster collapse");

    // pmem bad ranges from the fixture became events; /metrics counts them.
    const metrics = await fetch(`${agent.apiUrl}/metrics`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(
      /mirrorplane_events_total\{kind="pmem_badblocks",severity="error",node="tunable-node"\} 4/,
    );
    expect(text).toMatch(
      /mirrorplane_events_total\{kind="tunable_change",severity="notice",node="tunable-node"\} 2/,
    );
    expect(text).toContain(
      'mirrorplane_pmem_badblocks_sectors{device="pmem0",node="tunable-node"} 9',
    );
    expect(text).toContain("mirrorplane_clusterlog_requests_total");
    expect((await fetch(`${agent.apiUrl}/metrics`)).status).toBe(401);
    const status = await client.events.status.query();
    expect(status.sources).toMatchObject({
      khugepaged: true,
      pmem: true,
      dax: true,
      edac: false,
      kmsg: false,
    });
    await agent.stop();
  });
});
