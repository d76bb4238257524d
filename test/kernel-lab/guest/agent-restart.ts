import { parseArgs } from "node:util";
import {
  Agent,
  check,
  createMirror,
  fioAsync,
  guestMain,
  identical,
  makeLoopLeg,
  mirrorStatus,
  Results,
  readIopsLog,
  say,
  sh,
  sleep,
  step,
  WORK,
  waitInSync,
} from "./lib.ts";

// One host, the real kernel: the agent is stopped under random-write load — `kill -9` (a
// crash) or SIGTERM (a clean restart, an upgrade) — and started again. No I/O error may
// reach the writer; the mirror resyncs what it must and the legs end identical. The IOPS
// timeline around the restart, how long writes paused and how much was resynced are
// recorded (issue 11's figures).

const { values } = parseArgs({
  options: {
    signal: { type: "string", default: "KILL" },
    log: { type: "string", default: "core" },
    seconds: { type: "string", default: "30" },
    "stop-at": { type: "string", default: "8" },
    "restart-after": { type: "string", default: "2" },
    "size-mib": { type: "string", default: "64" },
  },
});

guestMain(async () => {
  const results = new Results();
  const signal = `SIG${values.signal}` as NodeJS.Signals;
  const sizeMiB = Number(values["size-mib"]);
  const seconds = Number(values.seconds);
  const leg0 = makeLoopLeg("leg0", sizeMiB, "random");
  const leg1 = makeLoopLeg("leg1", sizeMiB, "zero");
  const logDev = values.log === "disk" ? makeLoopLeg("log", 4, "zero") : null;
  const start = () =>
    Agent.start({
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
  let agent = await start();
  const dev = createMirror({
    name: "mir",
    uuid: `lab-restart-${values.log}`,
    sizeSectors: sizeMiB * 2048,
    regionSectors: 512,
    legs: [leg0.device, leg1.device],
    ...(logDev ? { logDevice: logDev.number } : {}),
  });
  await waitInSync("mir", 300_000);
  const regionCount = mirrorStatus("mir").regionCount;

  step(`random writes for ${seconds} s; ${signal} of the agent at ${values["stop-at"]} s`);
  const logPrefix = `${WORK}/fio`;
  const load = fioAsync({
    device: dev,
    rw: "randwrite",
    bs: "4k",
    iodepth: 16,
    seconds,
    logPrefix,
    logAvgMs: 500,
  });
  await sleep(Number(values["stop-at"]) * 1000);
  const stoppedAt = Date.now();
  agent.kill(signal);
  const exit = await agent.exited;
  const stopSeconds = (Date.now() - stoppedAt) / 1000;
  say(`the agent exited (${exit.code ?? exit.signal}) ${stopSeconds.toFixed(2)} s after ${signal}`);
  results.set("stopSeconds", stopSeconds);
  await sleep(Number(values["restart-after"]) * 1000);
  agent = await start();
  const upAt = Date.now();
  const resumed = await agent.waitForLog(/^log resumed$/, 120_000);
  results.set("resumedInSync", Number(resumed.inSync));
  results.set("resyncedRegions", regionCount - Number(resumed.inSync));
  say(`the log resumed with ${resumed.inSync} of ${regionCount} regions in sync`);
  const result = await load;
  results.set("fio", result);
  check(
    result.errors === 0 && result.exitCode === 0,
    `an I/O error reached the writer: ${JSON.stringify(result)}`,
  );

  // The IOPS timeline is relative to fio's start: how long after the new agent was up
  // writes flowed again, and the mean rate over the 20 s after the stop.
  const timeline = readIopsLog(logPrefix);
  results.set("iopsTimeline", timeline);
  const stopMs = stoppedAt - result.startedAtMs;
  const upMs = upAt - result.startedAtMs;
  results.set("stopAtMs", stopMs);
  results.set("upAtMs", upMs);
  const firstAfterUp = timeline.find((s) => s.ms > upMs && s.iops > 0);
  const resumeSeconds = firstAfterUp ? (firstAfterUp.ms - upMs) / 1000 : null;
  const during = timeline.filter((s) => s.ms > stopMs && s.ms <= stopMs + 20_000);
  results.set("writesResumeSecondsAfterUp", resumeSeconds);
  results.set(
    "iopsInTheTwentySecondsAfterTheStop",
    during.length ? during.reduce((a, s) => a + s.iops, 0) / during.length : null,
  );
  say(
    `writes: ${result.iops.toFixed(0)} IOPS overall; first writes ${resumeSeconds?.toFixed(1) ?? "never"} s after the new agent was up`,
  );

  step("resync; legs identical");
  results.set("syncSecondsAfterLoad", await waitInSync("mir", 300_000));
  sh("sync", []);
  const same = identical(leg0.device, leg1.device);
  check(same.same, `legs differ: ${same.detail}`);
  sh("dmsetup", ["remove", "mir"]);
  await agent.stop("SIGTERM");
});
