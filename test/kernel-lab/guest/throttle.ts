import { parseArgs } from "node:util";
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
  sleep,
  startHostAgent,
  step,
  waitFor,
  waitInSync,
} from "./lib.ts";

// One host, the real kernel: a throttled operator resync (issue 13: "enforced within ±20 %
// at every rate from 1/s"). The host agent (`run`, its API, re-arming `--rearm auto`)
// resyncs the whole mirror with a limit; the rate is read from the kernel's own status
// line (regions the kernel copied and the log recorded in sync), phase by phase:
//  * idle mirror at 5 regions/s, then changed while running to 2/s and 1/s (an idle
//    dm-raid1 asks for resync work only when its worker wakes, so the agent wakes it when
//    a new allowance arrives: packages/agent/src/clusterlog/wake.ts);
//  * 5/s under a read load (reads of out-of-sync regions queue on the mirror's worker);
//  * the limit lifted: the rest at full speed, the legs identical at the end.

const { values } = parseArgs({
  options: {
    "phase-seconds": { type: "string", default: "20" },
  },
});

const { port: PORT, token: TOKEN } = HOST_AGENT;
const SIZE_MIB = 64;
const REGION_SECTORS = 128; // 64 KiB: 1,024 regions
const UUID = "lab-throttle-mirror";

interface Progress {
  state: string;
  inSync: number;
  total: number;
  throttle: number | null;
  rate: number | null;
}

interface Phase {
  name: string;
  limit: number;
  seconds: number;
  regions: number;
  rate: number;
  ratio: number;
}

guestMain(async () => {
  const results = new Results();
  const phaseSeconds = Number(values["phase-seconds"]);
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
  const initialSync = await waitInSync("mir", 300_000);
  say(`initial sync in ${initialSync.toFixed(1)} s`);
  results.set("initialSyncSeconds", initialSync);
  // Leg 1 differs again behind the mirror's back: the resync has real copying to do.
  sh("dd", [
    "if=/dev/zero",
    `of=${leg1.device}`,
    "bs=1M",
    `count=${SIZE_MIB}`,
    "oflag=direct",
    "status=none",
  ]);

  const phases: Phase[] = [];
  /** The kernel's in-sync count over `seconds`, after `settle` seconds at the new limit. */
  const measure = async (name: string, limit: number, seconds: number, settle = 3) => {
    await sleep(settle * 1000);
    const a = { at: Date.now(), inSync: mirrorStatus("mir").inSync };
    await sleep(seconds * 1000);
    const b = { at: Date.now(), inSync: mirrorStatus("mir").inSync };
    const elapsed = (b.at - a.at) / 1000;
    const regions = b.inSync - a.inSync;
    const rate = regions / elapsed;
    const phase = { name, limit, seconds: elapsed, regions, rate, ratio: rate / limit };
    phases.push(phase);
    results.set("phases", phases);
    say(
      `${name}: ${regions} regions in ${elapsed.toFixed(1)} s = ${rate.toFixed(2)}/s at a limit of ${limit}/s (${(phase.ratio * 100).toFixed(0)} %)`,
    );
    return phase;
  };

  step("resync of the whole mirror at 5 regions/s, idle");
  const started = await agentMutation<Progress>(PORT, TOKEN, "resync.start", {
    uuid: UUID,
    throttle: 5,
    actor: "kernel-lab",
  });
  say(`resync.start: ${JSON.stringify(started)}`);
  await waitFor(
    "the kernel to start copying",
    () => mirrorStatus("mir").inSync < mirrorStatus("mir").regionCount,
    30_000,
  );
  await measure("idle 5/s", 5, phaseSeconds);

  step("throttle changed while running: 2 regions/s, idle");
  await agentMutation<Progress>(PORT, TOKEN, "resync.throttle", {
    uuid: UUID,
    regionsPerSecond: 2,
  });
  await measure("idle 2/s", 2, phaseSeconds);

  step("1 region/s, idle");
  await agentMutation<Progress>(PORT, TOKEN, "resync.throttle", {
    uuid: UUID,
    regionsPerSecond: 1,
  });
  await measure("idle 1/s", 1, phaseSeconds);

  step("5 regions/s under a read load on the mirror");
  await agentMutation<Progress>(PORT, TOKEN, "resync.throttle", {
    uuid: UUID,
    regionsPerSecond: 5,
  });
  let reading = true;
  const readLoad = (async () => {
    let n = 0;
    while (reading) {
      // 4 KiB direct reads spread over the mirror: out-of-sync ones queue on its worker.
      const offset = (n++ * 37) % (SIZE_MIB * 256);
      sh("dd", [
        `if=${dev}`,
        "of=/dev/null",
        "bs=4k",
        "count=1",
        `skip=${offset}`,
        "iflag=direct",
        "status=none",
      ]);
      await sleep(50);
    }
  })();
  await measure("read load 5/s", 5, phaseSeconds);
  reading = false;
  await readLoad;

  const progress = await agentQuery<Progress>(PORT, TOKEN, "resync.progress", { uuid: UUID });
  results.set("progressWhileThrottled", progress);
  say(`resync.progress: ${JSON.stringify(progress)}`);
  check(progress.state === "throttled" || progress.state === "running", `state ${progress.state}`);

  step("the limit lifted: the rest at full speed");
  await agentMutation<Progress>(PORT, TOKEN, "resync.throttle", {
    uuid: UUID,
    regionsPerSecond: null,
  });
  const rest = await waitInSync("mir", 300_000);
  results.set("restSeconds", rest);
  say(`the rest in ${rest.toFixed(1)} s`);
  sh("sync", []);
  const same = identical(leg0.device, leg1.device);
  check(same.same, `legs differ after the resync: ${same.detail}`);

  for (const p of phases) {
    check(
      p.ratio >= 0.8 && p.ratio <= 1.2,
      `${p.name}: ${p.rate.toFixed(2)} regions/s is not within ±20 % of ${p.limit}/s`,
    );
  }
  sh("dmsetup", ["remove", "mir"]);
  const stopped = await agent.stop("SIGTERM");
  check(stopped.code === 0, `the agent exited ${stopped.code ?? stopped.signal}`);
});
