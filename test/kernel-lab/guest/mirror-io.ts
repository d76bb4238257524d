import { parseArgs } from "node:util";
import {
  Agent,
  check,
  createMirror,
  fio,
  guestMain,
  identical,
  makeLoopLeg,
  mirrorStatus,
  Results,
  say,
  sh,
  step,
  WORK,
  waitInSync,
} from "./lib.ts";

// One host, the real kernel: a dm-raid1 mirror on the agent's userspace log
// (`clustered-core`, or `clustered-disk` with its log on a loop device), legs that differ
// before the initial sync; the initial sync, random 4 KiB and sequential 1 MiB writes
// (fio, direct I/O), and the legs compared byte for byte after each.

const { values } = parseArgs({
  options: {
    log: { type: "string", default: "core" },
    "size-mib": { type: "string", default: "64" },
    "region-kib": { type: "string", default: "256" },
    seconds: { type: "string", default: "8" },
    "integrated-flush": { type: "boolean", default: false },
  },
});

guestMain(async () => {
  const results = new Results();
  const sizeMiB = Number(values["size-mib"]);
  const regionSectors = Number(values["region-kib"]) * 2;
  const seconds = Number(values.seconds);

  step("legs: random against zeros");
  const leg0 = makeLoopLeg("leg0", sizeMiB, "random");
  const leg1 = makeLoopLeg("leg1", sizeMiB, "zero");
  check(!identical(leg0.device, leg1.device).same, "the legs must differ before the sync");
  const logDev = values.log === "disk" ? makeLoopLeg("log", 4, "zero") : null;

  step("the agent serves the connector");
  const agent = await Agent.start({
    label: "agent",
    command: "clusterlog",
    args: [
      "--socket",
      `${WORK}/clusterlog.sock`,
      "--data-dir",
      `${WORK}/agent`,
      "--connector",
      "on",
    ],
  });

  step(`mirror on clustered-${values.log}`);
  const sizeSectors = sizeMiB * 2048;
  const dev = createMirror({
    name: "mir",
    uuid: `lab-${values.log}-mirror`,
    sizeSectors,
    regionSectors,
    legs: [leg0.device, leg1.device],
    ...(logDev ? { logDevice: logDev.number } : {}),
    integratedFlush: values["integrated-flush"],
  });
  const syncSeconds = await waitInSync("mir", 300_000);
  results.set("initialSyncSeconds", syncSeconds);
  say(`initial sync: ${syncSeconds.toFixed(1)} s`);
  const afterSync = identical(leg0.device, leg1.device);
  check(afterSync.same, `legs differ after the initial sync: ${afterSync.detail}`);

  step("random 4 KiB writes");
  const random = fio({ device: dev, rw: "randwrite", bs: "4k", iodepth: 16, seconds });
  results.set("random4k", random);
  say(`random 4 KiB: ${random.iops.toFixed(0)} IOPS, mean ${random.meanLatencyMs.toFixed(1)} ms`);
  check(
    random.errors === 0 && random.exitCode === 0,
    `fio reported errors: ${JSON.stringify(random)}`,
  );
  check(random.ios > 0, "no write completed");

  step("sequential 1 MiB writes");
  const sequential = fio({ device: dev, rw: "write", bs: "1M", iodepth: 4, seconds });
  results.set("sequential1m", sequential);
  say(`sequential 1 MiB: ${(sequential.bwBytes / 1e6).toFixed(1)} MB/s`);
  check(sequential.errors === 0 && sequential.exitCode === 0, "fio reported errors");

  step("legs identical after the writes");
  await waitInSync("mir", 120_000);
  const status = mirrorStatus("mir");
  results.set("status", status);
  check(
    status.legs.every((l) => l.health === "A"),
    `a leg is not alive: ${JSON.stringify(status.legs)}`,
  );
  sh("sync", []);
  const after = identical(leg0.device, leg1.device);
  check(after.same, `legs differ after the writes: ${after.detail}`);

  step("teardown");
  sh("dmsetup", ["remove", "mir"]);
  const stopped = await agent.stop("SIGTERM");
  check(stopped.code === 0, `the agent exited ${stopped.code ?? stopped.signal} on SIGTERM`);
});
