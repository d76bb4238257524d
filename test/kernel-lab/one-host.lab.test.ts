import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestDatabase,
  startTestPostgres,
  type TestPostgres,
} from "../../packages/db/src/testing.ts";
import { prepareLab, runVm, type Vm, type VmExit } from "./lab.ts";

// One host, the real kernel (Debian's, under QEMU): the agent's production bundle serves
// dm-log-userspace over the netlink connector in place of cmirrord. Each test boots one VM
// and runs a guest program (guest/*.ts, which checks data — legs byte for byte — and
// exits non-zero with the reason); here the figures it recorded are checked too.

function passed(vm: Vm, exit: VmExit): void {
  expect(
    exit.status,
    `${vm.name}: guest ${exit.timedOut ? "timed out" : `exited ${exit.status ?? "without a status"}`}; console: ${vm.where}/console.log`,
  ).toBe(0);
}

interface FioFigures {
  iops: number;
  ios: number;
  errors: number;
  bwBytes: number;
}

beforeAll(async () => {
  await prepareLab();
});

describe("one host: a mirror on the agent's userspace log", () => {
  it("clustered-core: initial sync, random 4 KiB and sequential 1 MiB writes, legs identical", async () => {
    const { vm, exit } = await runVm({ name: "core", script: "guest mirror-io --log core" });
    passed(vm, exit);
    const r = vm.result<{
      random4k: FioFigures;
      sequential1m: FioFigures;
      initialSyncSeconds: number;
    }>();
    expect(r.random4k.ios).toBeGreaterThan(100);
    expect(r.random4k.errors).toBe(0);
    expect(r.sequential1m.bwBytes).toBeGreaterThan(0);
  });

  it("clustered-disk with integrated_flush (LVM never emits it): the same, log on a loop device", async () => {
    const { vm, exit } = await runVm({
      name: "disk",
      script: "guest mirror-io --log disk --integrated-flush",
    });
    passed(vm, exit);
    const r = vm.result<{ random4k: FioFigures }>();
    expect(r.random4k.ios).toBeGreaterThan(100);
  });

  it("clustered-disk: kill -9 right after a FLUSH loses no mark; after the restart only the marked regions resync", async () => {
    const { vm, exit } = await runVm({ name: "disk-kill", script: "guest disk-log-kill" });
    passed(vm, exit);
    const r = vm.result<{
      lostMarks: number[];
      resyncedRegions: number;
      writerExitCodes: number[];
    }>();
    expect(r.lostMarks).toEqual([]);
    expect(r.writerExitCodes.every((c) => c === 0)).toBe(true);
    // Five regions were written; the disk log held them (and nothing else) dirty.
    expect(r.resyncedRegions).toBeGreaterThanOrEqual(5);
    expect(r.resyncedRegions).toBeLessThan(256);
  });
});

describe("one host: the agent stopped under write load", () => {
  interface Restart {
    fio: FioFigures;
    stopSeconds: number;
    resyncedRegions: number;
    writesResumeSecondsAfterUp: number | null;
  }

  it("kill -9 and restart: no I/O error reaches the writer, legs identical", async () => {
    const { vm, exit } = await runVm({
      name: "restart-kill",
      script: "guest agent-restart --signal KILL",
    });
    passed(vm, exit);
    const r = vm.result<Restart>();
    expect(r.fio.errors).toBe(0);
    expect(r.fio.ios).toBeGreaterThan(0);
  });

  it("SIGTERM and restart (an upgrade): the state is handed over, nothing resynced, writes resume within 3 s of the new agent", async () => {
    // fio outlasts the new agent's start (≈ 20 s under TCG, more on a busy machine), so the resumption is seen.
    const { vm, exit } = await runVm({
      name: "restart-term",
      script: "guest agent-restart --signal TERM --seconds 75",
    });
    passed(vm, exit);
    const r = vm.result<Restart>();
    expect(r.fio.errors).toBe(0);
    expect(r.resyncedRegions).toBe(0);
    expect(r.writesResumeSecondsAfterUp).not.toBeNull();
    expect(r.writesResumeSecondsAfterUp!).toBeLessThanOrEqual(3);
  });
});

describe("one host: two agents", () => {
  it("only one serves the connector: a second is refused (exit 3) or serves its socket only; a killed holder's lock passes on", async () => {
    const { vm, exit } = await runVm({ name: "two-agents", script: "guest two-agents" });
    passed(vm, exit);
    const r = vm.result<{ refused: { status: number; line: string } }>();
    expect(r.refused.status).toBe(3);
  });
});

describe("one host: the host agent (`run`) with its API", () => {
  it("dmsetup suspend/resume, the inventory the dashboard gets, an operator resync re-arming the kernel", async () => {
    const { vm, exit } = await runVm({ name: "rearm", script: "guest suspend-rearm" });
    passed(vm, exit);
    const r = vm.result<{ rearms: number; inventory: { legs: { health: string }[] } }>();
    expect(r.rearms).toBeGreaterThanOrEqual(1);
    expect(r.inventory.legs.map((l) => l.health)).toEqual(["A", "A"]);
  });

  it("a throttled resync holds its limit within ±20 % at 5, 2 and 1 regions/s idle and under reads; lifted, the rest at full speed, legs identical", async () => {
    const { vm, exit } = await runVm({ name: "throttle", script: "guest throttle" });
    passed(vm, exit);
    const r = vm.result<{
      phases: { name: string; limit: number; rate: number; ratio: number }[];
    }>();
    expect(r.phases.map((p) => p.limit)).toEqual([5, 2, 1, 5]);
    for (const p of r.phases) {
      expect(p.ratio, `${p.name}: ${p.rate.toFixed(2)}/s`).toBeGreaterThanOrEqual(0.8);
      expect(p.ratio, `${p.name}: ${p.rate.toFixed(2)}/s`).toBeLessThanOrEqual(1.2);
    }
  });

  it("a failed leg replaced with the dashboard's guided commands: the spare is the one candidate, the held writes complete without error, the new leg is alive and identical after the resync", async () => {
    const { vm, exit } = await runVm({ name: "leg-replace", script: "guest leg-replace" });
    passed(vm, exit);
    const r = vm.result<{
      candidates: { disk: string; excluded: string | null }[];
      commands: string[];
      fio: { errors: number };
      identical: boolean;
    }>();
    expect(r.candidates.filter((c) => c.excluded === null)).toHaveLength(1);
    expect(r.commands[1]).toMatch(/^dmsetup suspend --noflush /);
    expect(r.fio.errors).toBe(0);
    expect(r.identical).toBe(true);
  });

  describe("a leg that fails under load", () => {
    let pg: TestPostgres;
    beforeAll(async () => {
      pg = await startTestPostgres({ port: 54900 + (process.pid % 50) });
    });
    afterAll(async () => {
      await pg?.stop();
    });

    it("is marked by the mirror, reported as events in Postgres, and shown failed in the inventory", async () => {
      const db = await createTestDatabase(pg.adminUrl, "lab_leg_failure");
      const url = new URL(db.url);
      const hostPort = Number(url.port);
      url.port = "5432"; // the guest's end of the mux
      const { vm, exit } = await runVm({
        name: "leg-failure",
        script: "guest leg-failure",
        env: { LAB_DATABASE_URL: url.toString() },
        forward: new Map([[5432, hostPort]]),
      });
      passed(vm, exit);
      const r = vm.result<{ inventory: { legs: { device: string; health: string }[] } }>();
      const failedLeg = r.inventory.legs[1]!;
      expect(failedLeg.health).not.toBe("A");
      const { default: pgClient } = await import("pg");
      const client = new pgClient.Client({ connectionString: db.url });
      await client.connect();
      try {
        const { rows } = await client.query<{
          kind: string;
          device: string | null;
          mirror: string | null;
          leg: string | null;
          raw_line: string | null;
          source: string;
        }>(
          "SELECT kind, device, mirror, leg, raw_line, source FROM events WHERE kind = 'device_failure'",
        );
        // The kernel's own block-layer line for the leg's device, placed on the mirror.
        const kernel = rows.find((e) => e.source === "kmsg" && e.device === failedLeg.device);
        expect(kernel, JSON.stringify(rows)).toBeDefined();
        expect(kernel!.mirror).toBe("mir");
        expect(kernel!.leg).toBe(failedLeg.device);
        expect(kernel!.raw_line).toContain(`I/O error, dev ${failedLeg.device}`);
        // dm-raid1 itself logs nothing for a non-default leg: its health character does.
        const health = await client.query<{ severity: string; data: { health: string } }>(
          "SELECT severity, data FROM events WHERE kind = 'device_failure' AND data->>'what' = 'mirror_leg_health' AND mirror = 'mir' AND leg = $1",
          [failedLeg.device],
        );
        expect(health.rows, JSON.stringify(rows)).toHaveLength(1);
        expect(health.rows[0]!.data.health).toBe(failedLeg.health);
        // The leg that stayed alive is never reported, not even while the repair reloads
        // the table between two reads of it (a status from the next load reads `U`).
        const alive = r.inventory.legs[0]!;
        const aliveHealth = await client.query(
          "SELECT 1 FROM events WHERE kind = 'device_failure' AND data->>'what' = 'mirror_leg_health' AND leg = $1",
          [alive.device],
        );
        expect(aliveHealth.rows, JSON.stringify(rows)).toHaveLength(0);
      } finally {
        await client.end();
        await db.drop();
      }
    });
  });
});
