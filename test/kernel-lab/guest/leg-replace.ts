import { spawnSync } from "node:child_process";
import {
  dmsetupCommands,
  replaceLegInTable,
  replacementCandidates,
  replacementState,
} from "../../../apps/web/src/lib/leg-replacement.ts";
import {
  agentMutation,
  agentQuery,
  check,
  createMirror,
  fioAsync,
  guestMain,
  HOST_AGENT,
  identical,
  makeLoopLeg,
  mirrorStatus,
  Results,
  say,
  sh,
  sleep,
  startHostAgent,
  step,
  WORK,
  waitFor,
  waitInSync,
} from "./lib.ts";

// One host, the real kernel: the dashboard's guided "Replace this leg…" (issue 13), end to
// end. A leg fails under writes; the agent's inventory (resync.logs: the table line, the
// legs and their health; disks.list: this host's disks) goes through the dialog's own pure
// functions (apps/web/src/lib/leg-replacement.ts): the spare disk is the one eligible
// candidate, the new table and the dmsetup commands are built, and run here as the
// operator would paste them, while the writes dm-raid1 held on the failure wait: none may
// fail. Then the inventory says the new leg is alive, the resync the
// dialog offers (the whole mirror) copies the data onto it, and the legs are identical.

const { port: PORT, token: TOKEN } = HOST_AGENT;
const SIZE_MIB = 64;
const REGION_SECTORS = 512;
const UUID = "lab-leg-replace";

interface LogRow {
  uuid: string;
  name: string | null;
  sizeBytes: number | null;
  table: string | null;
  legs: {
    device: string;
    majorMinor: string | null;
    underlying: string[];
    health: string;
    source: boolean;
  }[];
}

type Disk = Parameters<typeof replacementCandidates>[0][number];

guestMain(async () => {
  const results = new Results();
  const leg0 = makeLoopLeg("leg0", SIZE_MIB, "random");
  // Leg 1 on a tmpfs of its own, which fills up: its writes fail (as in leg-failure.ts).
  sh("mkdir", ["-p", `${WORK}/legfs`]);
  sh("mount", ["-t", "tmpfs", "-o", `size=${SIZE_MIB + 8}m`, "legfs", `${WORK}/legfs`]);
  const leg1file = `${WORK}/legfs/leg1.img`;
  sh("dd", ["if=/dev/zero", `of=${leg1file}`, "bs=1M", `count=${SIZE_MIB}`, "status=none"]);
  const leg1 = sh("losetup", ["-f", "--show", leg1file]).trim();
  // The replacement disk: empty (zeros), so "identical" after the resync is a real check.
  const spare = makeLoopLeg("spare", SIZE_MIB, "zero");
  const agent = await startHostAgent({ clusterLog: { rearm: "auto" } });
  const dev = createMirror({
    name: "mir",
    uuid: UUID,
    sizeSectors: SIZE_MIB * 2048,
    regionSectors: REGION_SECTORS,
    legs: [leg0.device, leg1],
  });
  await waitInSync("mir", 300_000);

  step("random writes; leg 1's device fails under them");
  const load = fioAsync({ device: dev, rw: "randwrite", bs: "4k", iodepth: 8, seconds: 8 });
  await sleep(2000);
  sh("fallocate", ["--punch-hole", "--offset", "0", "--length", `${SIZE_MIB}M`, leg1file]);
  spawnSync("dd", ["if=/dev/zero", `of=${WORK}/legfs/filler`, "bs=1M", "status=none"]);
  await waitFor(
    "dm-raid1 to mark leg 1 failed",
    () => mirrorStatus("mir").legs[1]!.health !== "A",
    60_000,
    200,
  );
  // dm-raid1 (handle_errors) now holds the writes that failed on leg 1 until the table is
  // reloaded: the writer waits, and must see no error once the replacement is in.

  step("what the dialog gets: the mirror's row and this host's disks");
  const row = await waitFor(
    "resync.logs to show leg 1 failed, with the table line",
    async () => {
      const logs = await agentQuery<LogRow[]>(PORT, TOKEN, "resync.logs");
      const r = logs.find((l) => l.uuid === UUID);
      return r?.table && r.legs?.[1] && r.legs[1].health !== "A" ? r : undefined;
    },
    30_000,
    500,
  );
  results.set("before", row);
  say(`table: ${row.table}; legs ${row.legs.map((l) => `${l.device}=${l.health}`).join(" ")}`);
  const inventory = await agentQuery<{ disks: Disk[] }>(PORT, TOKEN, "disks.list");
  const candidates = replacementCandidates(inventory.disks, row.sizeBytes);
  const eligible = candidates.filter((c) => c.excluded === null).map((c) => c.disk.name);
  results.set(
    "candidates",
    candidates.map((c) => ({ disk: c.disk.name, excluded: c.excluded })),
  );
  say(
    `candidates: ${candidates.map((c) => `${c.disk.name}${c.excluded ? ` (${c.excluded})` : ""}`).join("; ")}`,
  );
  const spareName = spare.device.replace("/dev/", "");
  check(eligible.includes(spareName), `the spare ${spareName} is not eligible`);
  for (const leg of [leg0.device, leg1]) {
    const name = leg.replace("/dev/", "");
    const c = candidates.find((x) => x.disk.name === name);
    check(c?.excluded?.startsWith("already leg"), `${name} (a leg) is not excluded as one`);
  }
  const chosen = candidates.find((c) => c.disk.name === spareName)!.disk;
  check(chosen.majorMinor === spare.number, `spare ${chosen.majorMinor} vs ${spare.number}`);
  const source = row.legs.findIndex((l) => l.source);
  const rewrite = replaceLegInTable(row.table!, 1, chosen.majorMinor!, source >= 0 ? source : null);
  const commands = dmsetupCommands(row.name!, rewrite.table);
  results.set("commands", commands);

  step("the operator runs the dialog's commands");
  for (const command of commands) {
    say(`# ${command}`);
    sh("bash", ["-c", command]);
  }
  const after = mirrorStatus("mir");
  say(`dmsetup status: legs ${after.legs.map((l) => `${l.device}=${l.health}`).join(" ")}`);
  const fio = await load;
  results.set("fio", { ios: fio.ios, errors: fio.errors, exitCode: fio.exitCode });
  say(`fio: ${fio.ios} writes, errors ${fio.errors}`);
  check(
    fio.errors === 0 && fio.exitCode === 0,
    `an I/O error reached the writer: ${JSON.stringify(fio)}`,
  );

  step("the dialog's watch: the leg on the new disk is alive");
  const replaced = await waitFor(
    "resync.logs to show the mirror on the new disk, alive",
    async () => {
      const logs = await agentQuery<LogRow[]>(PORT, TOKEN, "resync.logs");
      const r = logs.find((l) => l.uuid === UUID);
      return r && replacementState(r.legs, chosen) === "done" ? r : undefined;
    },
    60_000,
    500,
  );
  results.set("after", replaced);
  check(
    replaced.legs.every((l) => l.health === "A"),
    `legs after the reload: ${JSON.stringify(replaced.legs)}`,
  );

  step("the resync the dialog offers: the whole mirror onto the new leg");
  const started = await agentMutation<{ id: string }>(PORT, TOKEN, "resync.start", {
    uuid: UUID,
    actor: "kernel-lab",
  });
  const done = await waitFor(
    "the whole-mirror resync to finish",
    async () => {
      const p = await agentQuery<{ id: string; state: string; total: number } | null>(
        PORT,
        TOKEN,
        "resync.progress",
        { uuid: UUID },
      );
      return p?.id === started.id && p.state === "done" ? p : undefined;
    },
    300_000,
    500,
  );
  results.set("resync", done);
  await waitInSync("mir", 120_000);
  sh("sync", []);
  const same = identical(leg0.device, spare.device);
  results.set("identical", same.same);
  check(same.same, `leg 0 and the new leg differ after the resync: ${same.detail}`);
  say("leg 0 and the new leg are identical");

  sh("dmsetup", ["remove", "mir"]);
  const stopped = await agent.stop("SIGTERM");
  check(stopped.code === 0, `the agent exited ${stopped.code ?? stopped.signal}`);
});
