import { spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  Agent,
  check,
  createMirror,
  fio,
  guestMain,
  identical,
  makeLoopLeg,
  Results,
  say,
  sh,
  sleep,
  step,
  WORK,
  waitFor,
  waitInSync,
} from "./lib.ts";

// PB9 (docs/BENCHMARKS.md, issue 11): the mirror's real write path, in ONE boot so the
// ratios mean something under TCG. The same mirror (legs random against zeros) on
//   core      the kernel's own in-memory log: no userspace round trip, the limit
//   agent     the agent's `clustered-core` over the netlink connector
//   disk      the agent's `clustered-disk` (log on a loop device), integrated_flush
//   cmirrord  LVM2's cmirrord + one-node corosync (when built: build-cmirrord.sh)
// each: the initial sync, random 4 KiB writes QD 16, sequential 1 MiB writes, legs
// compared byte for byte after. Prints one line per log and the ratios.

const { values } = parseArgs({
  options: {
    "size-mib": { type: "string", default: "256" },
    seconds: { type: "string", default: "15" },
    logs: { type: "string", default: "core,agent,disk,cmirrord" },
    cmirrord: { type: "string" },
  },
});

interface Figures {
  readonly log: string;
  readonly initialSyncSeconds: number;
  readonly randomIops: number;
  readonly randomMeanMs: number;
  readonly sequentialMBps: number;
}

const sizeMiB = Number(values["size-mib"]);
const seconds = Number(values.seconds);
const REGION_SECTORS = 512;

async function measure(
  log: string,
  table: (legs: [string, string]) => Parameters<typeof createMirror>[0],
): Promise<Figures> {
  step(`${log}: initial sync, random 4 KiB, sequential 1 MiB`);
  const leg0 = makeLoopLeg(`${log}-leg0`, sizeMiB, "random");
  const leg1 = makeLoopLeg(`${log}-leg1`, sizeMiB, "zero");
  const dev = createMirror(table([leg0.device, leg1.device]));
  const initialSyncSeconds = await waitInSync("mir", 600_000);
  const random = fio({ device: dev, rw: "randwrite", bs: "4k", iodepth: 16, seconds });
  check(random.errors === 0, `${log}: random writes failed`);
  const sequential = fio({ device: dev, rw: "write", bs: "1M", iodepth: 4, seconds });
  check(sequential.errors === 0, `${log}: sequential writes failed`);
  await waitInSync("mir", 300_000);
  const same = identical(leg0.device, leg1.device);
  check(same.same, `${log}: legs differ: ${same.detail}`);
  sh("dmsetup", ["remove", "mir"]);
  sh("losetup", ["-d", leg0.device, leg1.device]);
  sh("rm", ["-f", leg0.file, leg1.file]);
  const figures = {
    log,
    initialSyncSeconds,
    randomIops: random.iops,
    randomMeanMs: random.meanLatencyMs,
    sequentialMBps: sequential.bwBytes / 1e6,
  };
  say(
    `PB9 ${log}: initial sync ${initialSyncSeconds.toFixed(1)} s, random 4k ${random.iops.toFixed(0)} IOPS (mean ${random.meanLatencyMs.toFixed(1)} ms), sequential 1M ${figures.sequentialMBps.toFixed(1)} MB/s`,
  );
  return figures;
}

const base = (uuid: string, legs: [string, string]) => ({
  name: "mir",
  uuid,
  sizeSectors: sizeMiB * 2048,
  regionSectors: REGION_SECTORS,
  legs,
});

/** One-node corosync on 127.0.0.1 and cmirrord beside it (docs/KERNEL-LAB.md). */
async function startCmirrord(binary: string): Promise<() => Promise<void>> {
  sh("ip", ["link", "set", "lo", "up"]);
  mkdirSync("/etc/corosync", { recursive: true });
  writeFileSync(
    "/etc/corosync/corosync.conf",
    `totem {
  version: 2
  cluster_name: lab
  transport: knet
  crypto_cipher: none
  crypto_hash: none
}
nodelist {
  node {
    ring0_addr: 127.0.0.1
    name: lab
    nodeid: 1
  }
}
quorum {
  provider: corosync_votequorum
}
logging {
  to_stderr: yes
  to_syslog: no
}
`,
  );
  const corosync = spawn("corosync", ["-f"], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  corosync.stdout.on("data", (c) => {
    out += c;
  });
  corosync.stderr.on("data", (c) => {
    out += c;
  });
  await sleep(3000);
  check(corosync.exitCode === null, `corosync exited: ${out}`);
  const lib = binary.replace(/\/cmirrord$/, "/lib");
  const cmirrord = spawn(binary, ["-f"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LD_LIBRARY_PATH: lib },
  });
  let cm = "";
  cmirrord.stdout.on("data", (c) => {
    cm += c;
  });
  cmirrord.stderr.on("data", (c) => {
    cm += c;
  });
  await waitFor(
    "cmirrord to start",
    async () => cmirrord.exitCode === null && sleep(2000).then(() => true),
    10_000,
  );
  check(cmirrord.exitCode === null, `cmirrord exited: ${cm}`);
  return async () => {
    cmirrord.kill("SIGTERM");
    corosync.kill("SIGTERM");
    await sleep(1000);
  };
}

guestMain(async () => {
  const results = new Results();
  const logs = values.logs.split(",");
  const figures: Figures[] = [];

  if (logs.includes("core")) {
    figures.push(
      await measure("core", (legs) => ({ ...base("bench-core", legs), kernelCoreLog: true })),
    );
  }
  if (logs.includes("agent") || logs.includes("disk")) {
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
    if (logs.includes("agent"))
      figures.push(await measure("agent", (legs) => base("bench-agent", legs)));
    if (logs.includes("disk")) {
      const logDev = makeLoopLeg("bench-log", 4, "zero");
      figures.push(
        await measure("disk", (legs) => ({
          ...base("bench-disk", legs),
          logDevice: logDev.number,
          integratedFlush: true,
        })),
      );
    }
    await agent.stop("SIGTERM");
  }
  const binary = values.cmirrord;
  if (logs.includes("cmirrord")) {
    if (!binary || !existsSync(binary)) {
      say("cmirrord: not built (test/kernel-lab/build-cmirrord.sh): skipped, no figure");
    } else {
      const stop = await startCmirrord(binary);
      figures.push(await measure("cmirrord", (legs) => base("bench-cmirrord", legs)));
      await stop();
    }
  }
  results.set("figures", figures);
  const core = figures.find((f) => f.log === "core");
  const cm = figures.find((f) => f.log === "cmirrord");
  for (const f of figures) {
    const parts = [`PB9 ratio ${f.log}:`];
    if (core) {
      parts.push(
        `random ${((100 * f.randomIops) / core.randomIops).toFixed(1)} % of core`,
        `sequential ${((100 * f.sequentialMBps) / core.sequentialMBps).toFixed(1)} % of core`,
        `sync ${(f.initialSyncSeconds / core.initialSyncSeconds).toFixed(2)}x core`,
      );
    }
    if (cm && f !== cm) parts.push(`random ${(f.randomIops / cm.randomIops).toFixed(2)}x cmirrord`);
    say(parts.join(" "));
  }
});
