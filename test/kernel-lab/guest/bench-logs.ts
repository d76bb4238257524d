import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
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
//   floor     floor-log.c: a single-threaded C server of the same protocol with nothing
//             else to do, the least any userspace log can cost (the round trip itself)
//   agent     the agent's `clustered-core` over the netlink connector
//   agent-if  the same with `integrated_flush` (one round trip fewer per flush: the marks
//             ride on the FLUSH, and a flush of clears only is deferred by the kernel)
//   disk      the agent's `clustered-disk` (log on a loop device), integrated_flush
//   cmirrord  LVM2's cmirrord + one-node corosync (when built: build-cmirrord.sh)
// each: the initial sync, random 4 KiB writes QD 16, sequential 1 MiB writes, legs
// compared byte for byte after. Prints one line per log and the ratios.

const { values } = parseArgs({
  options: {
    "size-mib": { type: "string", default: "256" },
    seconds: { type: "string", default: "15" },
    logs: { type: "string", default: "core,floor,agent,agent-if,disk,cmirrord" },
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

/** The userspace log server of a row, for its per-phase cost (none for the kernel's core log). */
interface LogServer {
  readonly pid: number;
  /** Requests answered so far by type, when the server can tell (floor-log). */
  counts?(): Promise<Record<string, number>>;
}

/** utime and stime of a process, in µs (/proc/PID/stat fields 14 and 15, USER_HZ 100). */
function cpuMicros(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]) * 10_000, system: Number(fields[12]) * 10_000 };
}

/**
 * Runs one phase and says what it cost the server per unit (a write, a region): its CPU
 * (user = its own code, system = syscalls and the kernel work done in its context) and,
 * where the server counts them, the requests the kernel sent per unit, by type.
 */
async function phase<T>(
  server: LogServer | undefined,
  label: string,
  run: () => T | Promise<T>,
  units: (result: T) => number,
  unitName: string,
): Promise<T> {
  const cpu0 = server ? cpuMicros(server.pid) : null;
  const counts0 = server?.counts ? await server.counts() : null;
  const result = await run();
  if (!server || !cpu0) return result;
  const cpu1 = cpuMicros(server.pid);
  const n = Math.max(1, units(result));
  const parts = [
    `server CPU per ${unitName}: user ${((cpu1.user - cpu0.user) / n).toFixed(0)} µs + system ${((cpu1.system - cpu0.system) / n).toFixed(0)} µs`,
  ];
  if (counts0 && server.counts) {
    const counts1 = await server.counts();
    const per = Object.entries(counts1)
      .map(([type, count]) => [type, (count - (counts0[type] ?? 0)) / n] as const)
      .filter(([, v]) => v >= 0.01);
    const total = per.reduce((sum, [, v]) => sum + v, 0);
    parts.push(
      `requests per ${unitName}: ${total.toFixed(2)} (${per.map(([t, v]) => `${t} ${v.toFixed(2)}`).join(", ")})`,
    );
  }
  say(`PB9 ${label}: ${parts.join("; ")}`);
  return result;
}

async function measure(
  log: string,
  table: (legs: [string, string]) => Parameters<typeof createMirror>[0],
  server?: LogServer,
): Promise<Figures> {
  step(`${log}: initial sync, random 4 KiB, sequential 1 MiB`);
  const leg0 = makeLoopLeg(`${log}-leg0`, sizeMiB, "random");
  const leg1 = makeLoopLeg(`${log}-leg1`, sizeMiB, "zero");
  const regions = Math.ceil((sizeMiB * 2048) / REGION_SECTORS);
  let dev = "";
  const initialSyncSeconds = await phase(
    server,
    `${log} initial sync`,
    async () => {
      dev = createMirror(table([leg0.device, leg1.device]));
      return waitInSync("mir", 600_000);
    },
    () => regions,
    "region",
  );
  const writes = async (label: string, rw: "randwrite" | "write", bs: string, iodepth: number) => {
    const run = () => fio({ device: dev, rw, bs, iodepth, seconds });
    const result = await phase(server, `${log} ${label}`, run, (r) => r.ios, "write");
    check(result.errors === 0, `${log}: ${label} writes failed`);
    return result;
  };
  const random = await writes("random 4k", "randwrite", "4k", 16);
  const sequential = await writes("sequential 1M", "write", "1M", 4);
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

/** floor-log.c, built with the guest's (the host's) gcc and run as a plain process. */
async function startFloor(): Promise<LogServer & { stop(): Promise<void> }> {
  // The guest runs in the checkout (the programs themselves are bundled elsewhere).
  const source = resolve("test/kernel-lab/floor-log.c");
  const binary = `${WORK}/floor-log`;
  sh("gcc", ["-O2", "-o", binary, source]);
  const child = spawn(binary, [], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr.on("data", (c) => {
    err += c;
  });
  await waitFor("floor-log to serve", async () => err.includes("serving"), 10_000);
  return {
    pid: child.pid!,
    async counts() {
      const before = err.length;
      child.kill("SIGUSR1");
      let line = "";
      await waitFor(
        "floor-log's counts",
        async () => {
          const m = /floor-log: counts (.*)\n/.exec(err.slice(before));
          if (m) line = m[1]!;
          return m !== null;
        },
        10_000,
        20,
      );
      return Object.fromEntries(
        line.split(" ").map((kv) => {
          const [k, v] = kv.split("=");
          return [k!, Number(v)];
        }),
      );
    },
    async stop() {
      child.kill("SIGTERM");
      await new Promise((resolve) => child.once("exit", resolve));
      say(err.trim().split("\n").at(-1) ?? "");
    },
  };
}

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
  if (logs.includes("floor")) {
    const floor = await startFloor();
    figures.push(await measure("floor", (legs) => base("bench-floor", legs), floor));
    await floor.stop();
  }
  if (logs.includes("agent") || logs.includes("agent-if") || logs.includes("disk")) {
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
    const server = { pid: agent.child.pid! };
    if (logs.includes("agent"))
      figures.push(await measure("agent", (legs) => base("bench-agent", legs), server));
    if (logs.includes("agent-if")) {
      figures.push(
        await measure(
          "agent-if",
          (legs) => ({ ...base("bench-agent-if", legs), integratedFlush: true }),
          server,
        ),
      );
    }
    if (logs.includes("disk")) {
      const logDev = makeLoopLeg("bench-log", 4, "zero");
      figures.push(
        await measure(
          "disk",
          (legs) => ({
            ...base("bench-disk", legs),
            logDevice: logDev.number,
            integratedFlush: true,
          }),
          server,
        ),
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
  const floor = figures.find((f) => f.log === "floor");
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
    if (floor && f !== floor && f !== core) {
      parts.push(
        `random ${((100 * f.randomIops) / floor.randomIops).toFixed(1)} % of floor`,
        `sequential ${((100 * f.sequentialMBps) / floor.sequentialMBps).toFixed(1)} % of floor`,
        `sync ${(f.initialSyncSeconds / floor.initialSyncSeconds).toFixed(2)}x floor`,
      );
    }
    say(parts.join(" "));
  }
});
