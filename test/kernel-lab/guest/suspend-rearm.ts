import {
  agentMutation,
  agentQuery,
  check,
  createMirror,
  guestMain,
  HOST_AGENT,
  identical,
  makeLoopLeg,
  mirrorStatus,
  Results,
  say,
  sh,
  startHostAgent,
  step,
  waitFor,
  waitInSync,
} from "./lib.ts";

// One host, the real kernel, the host agent as a storage host runs it (`run` with the
// cluster-log server in its process, the API, re-arming `--rearm auto`):
// * `dmsetup suspend` / `resume` of the mirror: the log survives it, writes go on;
// * the inventory the dashboard gets (resync.logs): legs, health characters, log type,
//   region size, size, from the real `dmsetup table`/`status`;
// * an operator resync of a range whose second leg was overwritten behind the mirror's
//   back: the agent re-arms its own kernel (dmsetup suspend/resume), the kernel copies the
//   range, and the legs are identical again.

const { port: PORT, token: TOKEN } = HOST_AGENT;
const SIZE_MIB = 64;
const REGION_SECTORS = 512;
const UUID = "lab-rearm-mirror";

interface LogRow {
  uuid: string;
  regionCount: number;
  inSync: number;
  name?: string | null;
  logType?: string | null;
  regionSectors?: number | null;
  sizeBytes?: number | null;
  legs?: { device: string; health: string; primary: boolean; source: boolean }[] | null;
  legsUnknownReason?: string | null;
}

guestMain(async () => {
  const results = new Results();
  const leg0 = makeLoopLeg("leg0", SIZE_MIB, "random");
  const leg1 = makeLoopLeg("leg1", SIZE_MIB, "zero");
  const agent = await startHostAgent({ clusterLog: { rearm: "auto" } });
  const dev = createMirror({
    name: "mir",
    uuid: UUID,
    sizeSectors: SIZE_MIB * 2048,
    regionSectors: REGION_SECTORS,
    legs: [leg0.device, leg1.device],
  });
  await waitInSync("mir", 300_000);

  step("the inventory, as the dashboard gets it");
  const logs = await agentQuery<LogRow[]>(PORT, TOKEN, "resync.logs");
  const row = logs.find((l) => l.uuid === UUID);
  results.set("inventory", row);
  say(`resync.logs: ${JSON.stringify(row)}`);
  check(row, `resync.logs has no ${UUID}: ${JSON.stringify(logs)}`);
  check(row.name === "mir", `name ${row.name}`);
  check(row.logType === "clustered-core", `log type ${row.logType}`);
  check(row.regionSectors === REGION_SECTORS, `region size ${row.regionSectors}`);
  check(row.sizeBytes === SIZE_MIB * 1024 * 1024, `size ${row.sizeBytes}`);
  check(row.inSync === row.regionCount, `in sync ${row.inSync}/${row.regionCount}`);
  const legNames = [leg0.device, leg1.device].map((d) => d.replace("/dev/", ""));
  check(
    row.legs?.length === 2 &&
      row.legs.every((l, i) => l.device === legNames[i] && l.health === "A"),
    `legs ${JSON.stringify(row.legs)} (${row.legsUnknownReason ?? ""})`,
  );
  check(row.legs[0]!.primary && row.legs[0]!.source && !row.legs[1]!.source, "leg roles");

  // The cluster as this member sees it (issue 14): itself, serving the log.
  const membership = await agentQuery<{
    members: number[];
    servedBy: Record<string, number>;
    order: { kind: string; connected: boolean };
  }>(PORT, TOKEN, "cluster.membership");
  results.set("membership", membership);
  say(`cluster.membership: ${JSON.stringify(membership)}`);
  check(
    membership.members.join() === "1" && membership.servedBy[UUID] === 1,
    "membership: this node alone, serving the log",
  );

  step("dmsetup suspend and resume: the log survives, writes go on");
  sh("dmsetup", ["suspend", "mir"]);
  check(
    sh("dmsetup", ["info", "-c", "--noheadings", "-o", "attr", "mir"]).includes("s"),
    "not suspended",
  );
  sh("dmsetup", ["resume", "mir"]);
  sh("dd", ["if=/dev/urandom", `of=${dev}`, "bs=64k", "count=16", "oflag=direct", "status=none"]);
  // The kernel's own core log keeps its bits across a suspend; so must ours (a suspend and
  // resume is routine: every LVM table change, and the agent's own re-arming).
  const afterResume = mirrorStatus("mir");
  results.set("inSyncAfterSuspendResume", afterResume.inSync);
  say(`after suspend/resume: ${afterResume.inSync}/${afterResume.regionCount} in sync`);
  check(
    afterResume.inSync === afterResume.regionCount,
    `after resume ${afterResume.inSync}/${afterResume.regionCount}`,
  );
  const same = identical(leg0.device, leg1.device);
  check(same.same, `legs differ after suspend/resume and writes: ${same.detail}`);

  step("an operator resync of regions 10-49, leg 1 overwritten behind the mirror's back");
  sh("dd", [
    "if=/dev/zero",
    `of=${leg1.device}`,
    "bs=128k",
    `seek=${(10 * REGION_SECTORS * 512) / (128 * 1024)}`,
    `count=${(40 * REGION_SECTORS * 512) / (128 * 1024)}`,
    "oflag=direct",
    "status=none",
  ]);
  check(!identical(leg0.device, leg1.device).same, "the overwrite did not make the legs differ");
  const rearmsBefore = agent.lines.filter((l) => /suspended and resumed/.test(l.msg ?? "")).length;
  const started = await agentMutation<{ state: string; id: string }>(PORT, TOKEN, "resync.start", {
    uuid: UUID,
    first: 10,
    last: 49,
    actor: "kernel-lab",
  });
  say(`resync.start: ${JSON.stringify(started)}`);
  const done = await waitFor(
    "the operator resync to finish",
    async () => {
      const p = await agentQuery<{ state: string; inSync: number; total: number } | null>(
        PORT,
        TOKEN,
        "resync.progress",
        { uuid: UUID },
      );
      return p?.state === "done" ? p : undefined;
    },
    300_000,
    500,
  );
  results.set("resync", done);
  const rearms =
    agent.lines.filter((l) => /suspended and resumed/.test(l.msg ?? "")).length - rearmsBefore;
  results.set("rearms", rearms);
  say(
    `resync done (${done.inSync}/${done.total}); the agent suspended and resumed its kernel ${rearms} time(s)`,
  );
  check(rearms >= 1, "the agent did not re-arm its kernel with dmsetup");
  await waitInSync("mir", 120_000);
  sh("sync", []);
  const repaired = identical(leg0.device, leg1.device);
  check(repaired.same, `legs differ after the operator resync: ${repaired.detail}`);

  sh("dmsetup", ["remove", "mir"]);
  const stopped = await agent.stop("SIGTERM");
  check(stopped.code === 0, `the agent exited ${stopped.code ?? stopped.signal}`);
});
