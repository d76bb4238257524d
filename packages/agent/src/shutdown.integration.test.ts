import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createIngestPool, type IngestPool } from "@mirrorplane/db/ingest";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { createTRPCClient, httpLink } from "@trpc/client";
import superjson from "superjson";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type CliProcess, startCli } from "../testing/cli-process.ts";
import { TcpProxy } from "../testing/tcp-proxy.ts";
import type { AgentRouter } from "./api/router.ts";

// Issue 14, "shutdown bounded": the real `mirrorplane-agent run` process, its Postgres
// behind a proxy the test cuts while the agent runs. Either Postgres is gone (connections
// reset, new ones refused) or it hangs (connections open, nothing answered: a stopped
// server, a path dropping packets). The agent accepts events (tunable changes through its
// API) after the fault, gets SIGTERM, and must exit 0, say what it could not store, and
// keep every accepted event in its spool; the next agent, with Postgres back, stores each
// of them once. The time from SIGTERM to exit is printed (the target is 2 s); no test
// here is timed.

const token = "shutdown-test-token-0123456789";
const fixtures = join(import.meta.dirname, "../test/fixtures");

describe("SIGTERM with Postgres unreachable (real agent process, real Postgres)", () => {
  let database: { url: string; drop(): Promise<void> };
  let pool: IngestPool;
  const dirs: string[] = [];
  const running: CliProcess[] = [];
  beforeAll(async () => {
    database = await createTestDatabase(inject("pgAdminUrl"), "agent_shutdown");
    pool = createIngestPool(database.url);
  });
  afterAll(async () => {
    for (const cli of running) if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
    await pool.end();
    await database.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  const startAgentProcess = async (nodeId: string, root: string, databaseUrl: string) => {
    const cli = startCli(
      ["--token", token, "--database-url", databaseUrl, "--root", root]
        .concat(["--data-dir", join(root, "state"), "--host", "127.0.0.1", "--port", "0"])
        .concat(["--node-id", nodeId, "--sample-interval-ms", "3600000", "--kmsg", "false"]),
      { command: "run" },
    );
    running.push(cli);
    const listening = JSON.parse(await cli.line(/agent API listening/)) as { apiUrl: string };
    await cli.line(/source deviceStates/); // past the start-up probes
    const api = createTRPCClient<AgentRouter>({
      links: [
        httpLink({
          url: `${listening.apiUrl}/trpc`,
          transformer: superjson,
          headers: { authorization: `Bearer ${token}` },
        }),
      ],
    });
    return { cli, api };
  };

  const sigterm = async (cli: CliProcess) => {
    const exited = new Promise<number | null>((r) => cli.child.once("exit", (code) => r(code)));
    const t0 = performance.now();
    cli.child.kill("SIGTERM");
    const code = await exited;
    return { code, ms: Math.round(performance.now() - t0) };
  };

  const storedValues = async (nodeId: string) =>
    (
      await pool.query<{ value: string; n: string }>(
        "SELECT data->>'new' AS value, count(*) AS n FROM events WHERE node_id = $1 AND kind = 'tunable_change' GROUP BY 1 ORDER BY 1",
        [nodeId],
      )
    ).rows;

  it.each([
    ["gone", (proxy: TcpProxy) => proxy.down()],
    ["hung", (proxy: TcpProxy) => proxy.stall()],
  ] as const)(
    "Postgres %s: exits 0, says what it could not store, and loses no accepted event",
    async (fault, cut) => {
      const nodeId = `shutdown-${fault}`;
      const root = await mkdtemp(join(tmpdir(), `mp-shutdown-${fault}-`));
      dirs.push(root);
      await cp(join(fixtures, "thp-6.18"), root, { recursive: true });
      await mkdir(join(root, "proc/self"), { recursive: true });
      await writeFile(join(root, "proc/self/smaps"), "KernelPageSize:        4 kB\n");
      const target = new URL(database.url);
      const proxy = new TcpProxy("127.0.0.1", Number(target.port));
      await proxy.start();
      try {
        const first = await startAgentProcess(nodeId, root, proxy.rewrite(database.url));
        const actor = { id: "u-1", name: "alice" };
        // Stored while Postgres is there (and the node registered).
        await first.api.khugepaged.setTunable.mutate({
          name: "khugepaged/pages_to_scan",
          value: 5000,
          actor,
        });
        for (let i = 0; i < 100 && (await storedValues(nodeId)).length === 0; i++)
          await new Promise((r) => setTimeout(r, 50));
        expect(await storedValues(nodeId)).toEqual([{ value: "5000", n: "1" }]);

        cut(proxy);
        const accepted = [5001, 5002, 5003, 5004, 5005];
        for (const value of accepted) {
          const change = await first.api.khugepaged.setTunable.mutate({
            name: "khugepaged/pages_to_scan",
            value,
            actor,
          });
          expect(change.new).toBe(String(value));
        }

        const { code, ms } = await sigterm(first.cli);
        console.log(`SIGTERM with Postgres ${fault}: exited in ${ms} ms`);
        expect(code, first.cli.lines.join("\n")).toBe(0);
        // It says what it could not do: the events left for the next start.
        const kept = first.cli.lines.find((l) =>
          l.includes("events kept in the spool for the next start"),
        );
        expect(kept, first.cli.lines.join("\n")).toBeDefined();
        expect(JSON.parse(kept!).spooled).toBeGreaterThanOrEqual(accepted.length);
        if (fault === "hung") {
          // It gave up on the write Postgres never answered, and said so.
          const gaveUp = first.cli.lines.find((l) =>
            l.includes("the database did not answer in time"),
          );
          expect(gaveUp, first.cli.lines.join("\n")).toBeDefined();
        }
        const said = first.cli.lines.slice(
          first.cli.lines.findIndex((l) => /shutting down/.test(l)),
        );
        console.log(said.map((l) => (JSON.parse(l) as { msg: string }).msg).join("\n"));
        const spool = (await readFile(join(root, "state", "events.spool"), "utf8"))
          .split("\n")
          .filter((l) => l.length > 0)
          .map((l) => JSON.parse(l) as { kind: string; data: { new?: string } });
        expect(
          spool
            .filter((e) => e.kind === "tunable_change")
            .map((e) => Number(e.data.new))
            .sort(),
        ).toEqual(expect.arrayContaining(accepted));

        // Postgres back: the next agent replays the spool, each event once.
        proxy.down(); // drops the first agent's stalled connections
        proxy.up();
        const second = await startAgentProcess(nodeId, root, proxy.rewrite(database.url));
        await second.cli.line(/event spool replayed into the database/);
        expect(await storedValues(nodeId)).toEqual(
          [5000, ...accepted].map((v) => ({ value: String(v), n: "1" })),
        );
        expect((await sigterm(second.cli)).code).toBe(0);
        expect(await readFile(join(root, "state", "events.spool"), "utf8")).toBe("");
      } finally {
        await proxy.close();
      }
    },
    60_000,
  );
});
