import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentApiServer, readKhugepaged } from "@mirrorplane/agent";
import { createDb, type Db } from "@mirrorplane/db";
import { createTestDatabase } from "@mirrorplane/db/testing";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAgentDirectory } from "~/server/agents";
import { createCaller } from "~/server/root";
import { type ContextUser, createContextInner } from "~/server/trpc";
import { TunableWriter } from "../../packages/agent/src/collectors/tunables";
import { startTestAgent } from "./agent-api";

const token = "tunable-test-token-0123456789";

describe("khugepaged tunables through the control plane (real agent API on a fixture copy)", () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Db;
  let agent: AgentApiServer;
  let root: string;
  const recorded: unknown[] = [];
  const as = (user: ContextUser) =>
    createCaller(
      createContextInner({ db, agents: createAgentDirectory(token), now: () => new Date(), user }),
    );
  const operator: ContextUser = { id: "o", username: "otto", role: "operator" };
  const file = (name: string) =>
    readFile(join(root, "sys/kernel/mm/transparent_hugepage", name), "utf8");

  beforeAll(async () => {
    // Never the host's sysfs: a copy of the 6.18 fixture tree in a temp dir.
    root = await mkdtemp(join(tmpdir(), "mirrorplane-tunables-"));
    await cp(join(import.meta.dirname, "../../packages/agent/test/fixtures/thp-6.18"), root, {
      recursive: true,
    });
    const writer = new TunableWriter(root, "n1", (e) => recorded.push(e));
    agent = await startTestAgent(token, {
      readKhugepaged: () => readKhugepaged(root),
      setTunable: (input) => writer.set(input),
    });
    database = await createTestDatabase(inject("pgAdminUrl"), "tunables");
    db = createDb(database.url, { poolSize: 2 });
    await db.user.create({
      data: { id: "o", name: "otto", username: "otto", email: "otto@users.mirrorplane.invalid" },
    });
    await db.node.create({
      data: {
        id: "n1",
        hostname: "h",
        apiUrl: agent.url,
        agentVersion: "0",
        sampleIntervalMs: 10_000,
        startedAt: new Date(),
        lastSeenAt: new Date(),
      },
    });
  });
  afterAll(async () => {
    await agent.close();
    await db.$disconnect();
    await database.drop();
    await rm(root, { recursive: true, force: true });
  });

  it("changes a tunable, reports old → new, and audits it; the agent records the event", async () => {
    const change = await as(operator).khugepaged.setTunable({
      nodeId: "n1",
      name: "khugepaged/pages_to_scan",
      value: "2048",
    });
    expect(change).toMatchObject({ name: "khugepaged/pages_to_scan", old: "4096", new: "2048" });
    expect((await file("khugepaged/pages_to_scan")).trim()).toBe("2048");
    const audit = await as(operator).audit.list({ limit: 1 });
    expect(audit.items[0]).toMatchObject({
      action: "khugepaged.setTunable",
      actor: "otto",
      outcome: "ok",
      target: "node:n1:khugepaged/pages_to_scan",
    });
    expect(recorded.length).toBe(1);
  });

  it("refuses what the kernel refuses, with the reason, and leaves the file alone", async () => {
    for (const [name, value] of [
      ["khugepaged/pages_to_scan", "0"],
      ["khugepaged/defrag", "2"],
      ["khugepaged/max_ptes_none", "512"],
      ["khugepaged/scan_sleep_millisecs", "-1"],
      ["enabled", "sometimes"],
    ] as const) {
      const before = await file(name);
      await expect(
        as(operator).khugepaged.setTunable({ nodeId: "n1", name, value }),
        `${name}=${value}`,
      ).rejects.toMatchObject({ code: "BAD_REQUEST" });
      expect(await file(name)).toBe(before);
    }
    const audit = await as(operator).audit.list({ limit: 5 });
    expect(audit.items.every((a) => a.outcome === "refused" && a.detail)).toBe(true);
  });

  it("is refused to viewers before reaching the agent", async () => {
    await expect(
      as({ id: "v", username: "vera", role: "viewer" }).khugepaged.setTunable({
        nodeId: "n1",
        name: "khugepaged/defrag",
        value: "0",
      }),
    ).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect((await file("khugepaged/defrag")).trim()).toBe("1");
  });

  it("a write of the value it already has is not a change: not written, not an event (issue 13)", async () => {
    const events = recorded.length;
    const same = await as(operator).khugepaged.setTunable({
      nodeId: "n1",
      name: "khugepaged/pages_to_scan",
      value: "2048",
      reason: "re-applying the runbook value",
    });
    expect(same).toMatchObject({ old: "2048", new: "2048", changed: false });
    expect(recorded.length).toBe(events);
    const audit = await as(operator).audit.list({ limit: 1 });
    expect(audit.items[0]).toMatchObject({
      outcome: "ok",
      detail: "unchanged: already 2048",
      params: { value: "2048", reason: "re-applying the runbook value" },
    });
  });

  it("edits enabled and a per-size enabled, and passes the reason to the agent's event", async () => {
    const thp = await readFile(join(root, "sys/kernel/mm/transparent_hugepage", "enabled"), "utf8");
    const next = /\[always\]/.test(thp) ? "madvise" : "always";
    const change = await as(operator).khugepaged.setTunable({
      nodeId: "n1",
      name: "enabled",
      value: next,
      reason: "ticket 42",
    });
    expect(change.changed).toBe(true);
    expect(await file("enabled")).toContain(`[${next}]`);
    expect(JSON.stringify(recorded.at(-1))).toContain("ticket 42");
    const sizes = await readdir(join(root, "sys/kernel/mm/transparent_hugepage")).then((d) =>
      d.filter((n) => n.startsWith("hugepages-")),
    );
    if (sizes.length > 0) {
      const r = await as(operator).khugepaged.setTunable({
        nodeId: "n1",
        name: `${sizes[0]}/enabled`,
        value: "never",
      });
      expect(r.new).toBe("never");
      expect(await file(`${sizes[0]}/enabled`)).toContain("[never]");
    }
  });
});
