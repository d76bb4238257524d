import { spawnSync } from "node:child_process";
import {
  agentQuery,
  check,
  createMirror,
  deviceNumber,
  fioAsync,
  guestMain,
  HOST_AGENT,
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

// One host, the real kernel, the host agent with its kernel-log reader and Postgres (this
// machine's, over the lab's mux): a leg fails under write load. The second leg is a loop
// device over a file on a small tmpfs; under load its blocks are freed and the tmpfs
// filled, so every write to it fails below the loop driver like a failing disk: the kernel
// prints its own block-layer errors, dm-raid1 (handle_errors) marks the leg failed and
// holds the writes. The agent reports the failure as events naming mirror and leg, the
// inventory shows the leg's health character; then the leg is dropped from the table the
// way LVM's repair does (suspend --noflush, a table without it, resume), the held writes
// complete, and the writer saw no I/O error.

const { port: PORT, token: TOKEN } = HOST_AGENT;
const SIZE_MIB = 64;
const UUID = "lab-leg-failure";

interface LogRow {
  uuid: string;
  legs?: { device: string; health: string; source: boolean }[] | null;
}

guestMain(async () => {
  const results = new Results();
  const databaseUrl = process.env.LAB_DATABASE_URL;
  check(databaseUrl, "LAB_DATABASE_URL is not set");
  const leg0 = makeLoopLeg("leg0", SIZE_MIB, "random");
  sh("mkdir", ["-p", `${WORK}/legfs`]);
  sh("mount", ["-t", "tmpfs", "-o", `size=${SIZE_MIB + 8}m`, "legfs", `${WORK}/legfs`]);
  const leg1file = `${WORK}/legfs/leg1.img`;
  sh("dd", ["if=/dev/zero", `of=${leg1file}`, "bs=1M", `count=${SIZE_MIB}`, "status=none"]);
  const leg1dev = sh("losetup", ["-f", "--show", leg1file]).trim();
  const leg1 = { file: leg1file, device: leg1dev, number: deviceNumber(leg1dev) };
  const sizeSectors = SIZE_MIB * 2048;
  const legName = (d: string) => d.replace("/dev/", "");
  const agent = await startHostAgent({
    databaseUrl,
    kmsg: true,
    kmsgPollMs: 200,
    mirrors: [
      {
        name: "mir",
        regionSectors: 512,
        sizeSectors,
        legs: [{ device: legName(leg0.device) }, { device: legName(leg1.device) }],
      },
    ],
    // The leg health characters are read at each sample (mirror-health.ts).
    sampleIntervalMs: 1000,
  });
  const dev = createMirror({
    name: "mir",
    uuid: UUID,
    sizeSectors,
    regionSectors: 512,
    legs: [leg0.device, leg1.device],
  });
  await waitInSync("mir", 300_000);
  const before = mirrorStatus("mir");
  check(
    before.legs.every((l) => l.health === "A"),
    `legs before: ${JSON.stringify(before.legs)}`,
  );

  step("random writes; leg 1's device fails under them");
  const load = fioAsync({ device: dev, rw: "randwrite", bs: "4k", iodepth: 8, seconds: 12 });
  await sleep(3000);
  sh("fallocate", ["--punch-hole", "--offset", "0", "--length", `${SIZE_MIB}M`, leg1file]);
  // Fill the tmpfs: dd stops with ENOSPC, which is the point.
  spawnSync("dd", ["if=/dev/zero", `of=${WORK}/legfs/filler`, "bs=1M", "status=none"]);
  const failed = await waitFor(
    "dm-raid1 to mark leg 1 failed",
    () => {
      const s = mirrorStatus("mir");
      return s.legs[1]!.health !== "A" ? s : undefined;
    },
    60_000,
    200,
  );
  results.set("statusAfterFailure", failed);
  say(`dmsetup status: legs ${failed.legs.map((l) => `${l.device}=${l.health}`).join(" ")}`);
  check(failed.legs[0]!.health === "A", "leg 0 must stay alive");
  const kernelLines = sh("dmesg", [])
    .split("\n")
    .filter((l) => /I\/O error|raid1|loop: Write error/.test(l));
  results.set("kernelLines", kernelLines.slice(0, 20));
  check(
    kernelLines.some((l) => l.includes(`dev ${legName(leg1.device)}`)),
    "the kernel printed no I/O error for the leg",
  );

  step("the inventory shows the leg failed");
  const row = await waitFor(
    "resync.logs to show leg 1 failed",
    async () => {
      const logs = await agentQuery<LogRow[]>(PORT, TOKEN, "resync.logs");
      const r = logs.find((l) => l.uuid === UUID);
      return r?.legs?.[1] && r.legs[1].health !== "A" ? r : undefined;
    },
    30_000,
    500,
  );
  results.set("inventory", row);
  say(`inventory: ${JSON.stringify(row.legs)}`);

  step("the agent stores the failure");
  // The kernel's block-layer lines come through /dev/kmsg at once; the leg's health
  // character is read at the next sample (every second here).
  await sleep(3000);
  const pipeline = await waitFor(
    "the agent to write device-failure events to Postgres",
    async () => {
      const status = await agentQuery<{ pipeline: { written: number; queued: number } }>(
        PORT,
        TOKEN,
        "events.status",
      );
      return status.pipeline.written > 0 && status.pipeline.queued === 0
        ? status.pipeline
        : undefined;
    },
    60_000,
    500,
  );
  results.set("pipeline", pipeline);

  step("repair: the failed leg out of the table (suspend --noflush, reload, resume)");
  sh("dmsetup", ["suspend", "--noflush", "mir"]);
  sh("dmsetup", ["load", "mir", "--table", `0 ${sizeSectors} linear ${leg0.device} 0`]);
  sh("dmsetup", ["resume", "mir"]);
  const written = await load;
  results.set("fio", written);
  say(`fio: ${written.ios} writes, errors ${written.errors}`);
  check(
    written.errors === 0 && written.exitCode === 0,
    `an I/O error reached the writer: ${JSON.stringify(written)}`,
  );
  sh("dmsetup", ["remove", "mir"]);
  await agent.stop("SIGTERM");
});
