import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { createInterface } from "node:readline";
import {
  parseMirrorStatus,
  parseMirrorTable,
} from "../../../packages/agent/src/mirrors/dm-mirror.ts";

// What the guest programs share (they run inside a lab VM, as root, in this machine's
// root over 9p, cwd the checkout): shell calls, legs on loop devices, mirrors through
// dmsetup, fio, the agent's production bundle as a storage host runs it, and the result
// file the host-side test reads. Checks throw: a guest program's non-zero exit is the
// failure, with the reason as its last line.

export const RUN_DIR = process.env.LAB_RUN_DIR ?? "/run/lab";
export const WORK = "/run/lab";
export const VM = process.env.LAB_NAME ?? "lab";
export const AGENT_CLI = "packages/agent/dist/cli.mjs";

export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function step(name: string): void {
  say(`== ${name}`);
}

export class LabFailure extends Error {}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new LabFailure(message);
}

/** A command's stdout; a non-zero exit throws with its stderr. */
export function sh(cmd: string, args: readonly string[], options: { input?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: options.input, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    throw new LabFailure(
      `${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`,
    );
  }
  return r.stdout;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value other than undefined/false, or fails with `what`. */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new LabFailure(`timed out after ${timeoutMs / 1000} s: ${what}`);
    await sleep(everyMs);
  }
}

/** Figures and facts for the host-side test, written to `$LAB_RUN_DIR/<file>`. */
export class Results {
  readonly #values: Record<string, unknown> = {};
  constructor(readonly file = "result.json") {}
  set(key: string, value: unknown): void {
    this.#values[key] = value;
    this.save();
  }
  get(key: string): unknown {
    return this.#values[key];
  }
  save(): void {
    writeFileSync(join(RUN_DIR, this.file), `${JSON.stringify(this.#values, null, 2)}\n`);
  }
}

/** Runs `main`; a failure is printed as `GUEST-FAIL <reason>` and exits 1. */
export function guestMain(main: () => Promise<void>): void {
  main().then(
    () => {
      say("GUEST-OK");
      process.exit(0);
    },
    (error: unknown) => {
      say(`GUEST-FAIL ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exit(1);
    },
  );
}

// ---- block devices ----

export interface Leg {
  readonly file: string;
  readonly device: string;
  /** `M:m` */
  readonly number: string;
}

/** `M:m` of a block device node. */
export function deviceNumber(device: string): string {
  const rdev = statSync(device).rdev;
  const major = ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | ((rdev >> 12) & 0xfff00);
  return `${major}:${minor}`;
}

/**
 * A leg on a loop device over a file in the guest's tmpfs, filled so that two legs differ
 * before the initial sync (random against zeros: "legs identical" is then a real check).
 */
export function makeLoopLeg(name: string, sizeMiB: number, fill: "random" | "zero"): Leg {
  const file = join(WORK, `${name}.img`);
  sh("dd", [
    `if=${fill === "random" ? "/dev/urandom" : "/dev/zero"}`,
    `of=${file}`,
    "bs=1M",
    `count=${sizeMiB}`,
    "status=none",
  ]);
  const device = sh("losetup", ["-f", "--show", file]).trim();
  return { file, device, number: deviceNumber(device) };
}

/** The guest's virtio disk with this serial (lab.ts VmDisk). */
export function diskBySerial(serial: string): string {
  const out = sh("sh", ["-c", 'for d in /sys/block/vd*; do echo "$d $(cat $d/serial)"; done']);
  for (const line of out.trim().split("\n")) {
    const [path, s] = line.split(" ");
    if (s === serial) return `/dev/${path!.split("/").at(-1)}`;
  }
  throw new LabFailure(`no virtio disk with serial ${serial}`);
}

/** Byte-for-byte comparison of two legs' first `bytes` (cmp: C, not JIT-compiled under TCG). */
export function identical(a: string, b: string, bytes?: number): { same: boolean; detail: string } {
  // dm-raid1 and kcopyd write the legs with bios, beneath the legs' page cache: a buffered
  // read can return what an earlier read cached (a false difference, or a false match).
  // Drop the cached pages of both first (BLKFLSBUF); the mirror's writes are direct.
  const devices = [a, b].filter((p) => p.startsWith("/dev/"));
  if (devices.length > 0) sh("blockdev", ["--flushbufs", ...devices]);
  const args = bytes === undefined ? [a, b] : ["-n", String(bytes), a, b];
  const r = spawnSync("cmp", args, { encoding: "utf8" });
  return { same: r.status === 0, detail: (r.stdout + r.stderr).trim() };
}

export function sectorsOf(device: string): number {
  return Number(sh("blockdev", ["--getsz", device]).trim());
}

// ---- device-mapper ----

export interface MirrorSpec {
  readonly name: string;
  readonly uuid: string;
  readonly sizeSectors: number;
  readonly regionSectors: number;
  readonly legs: readonly string[];
  /** `clustered-core` (default) or `clustered-disk` on this log device (`M:m`). */
  readonly logDevice?: string;
  readonly integratedFlush?: boolean;
  readonly handleErrors?: boolean;
  /** `sync` / `nosync` (default: neither: a new mirror resyncs). */
  readonly sync?: "sync" | "nosync";
  /** `core`: the kernel's own in-memory log (the lab's limit), no userspace at all. */
  readonly kernelCoreLog?: boolean;
}

/** The dm table of a mirror on a userspace log, as LVM writes it (spec §2.1). */
export function mirrorTable(spec: MirrorSpec): string {
  const legs = spec.legs.map((leg) => `${leg} 0`).join(" ");
  const features = spec.handleErrors === false ? "" : " 1 handle_errors";
  if (spec.kernelCoreLog) {
    const args = [String(spec.regionSectors), ...(spec.sync ? [spec.sync] : [])];
    return `0 ${spec.sizeSectors} mirror core ${args.length} ${args.join(" ")} ${spec.legs.length} ${legs}${features}`;
  }
  const logArgs = [
    spec.uuid,
    ...(spec.integratedFlush ? ["integrated_flush"] : []),
    spec.logDevice ? "clustered-disk" : "clustered-core",
    ...(spec.logDevice ? [spec.logDevice] : []),
    String(spec.regionSectors),
    ...(spec.sync ? [spec.sync] : []),
  ];
  return `0 ${spec.sizeSectors} mirror userspace ${logArgs.length} ${logArgs.join(" ")} ${spec.legs.length} ${legs}${features}`;
}

export function createMirror(spec: MirrorSpec): string {
  const table = mirrorTable(spec);
  say(`dmsetup create ${spec.name} --table "${table}"`);
  sh("dmsetup", ["create", spec.name, "--table", table]);
  // No udev in the guest: /dev/mapper/NAME may not open (KERNEL-LAB.md); /dev/dm-N does.
  const minor = sh("dmsetup", ["info", "-c", "--noheadings", "-o", "minor", spec.name]).trim();
  return `/dev/dm-${minor}`;
}

export function mirrorStatus(name: string) {
  const out = sh("dmsetup", ["status", name]);
  const [line] = parseMirrorStatus(
    out
      .split("\n")
      .map((l) => (l ? `${name}: ${l}` : l))
      .join("\n"),
  );
  if (!line)
    throw new LabFailure(`dmsetup status ${name}: no mirror line in ${JSON.stringify(out)}`);
  return line;
}

export function mirrorTableLine(name: string) {
  const out = sh("dmsetup", ["table", name]);
  const [line] = parseMirrorTable(
    out
      .split("\n")
      .map((l) => (l ? `${name}: ${l}` : l))
      .join("\n"),
  );
  if (!line) throw new LabFailure(`dmsetup table ${name}: no mirror line`);
  return line;
}

/** Seconds until the mirror reports every region in sync. */
export async function waitInSync(name: string, timeoutMs: number): Promise<number> {
  const started = Date.now();
  let last = "";
  await waitFor(
    `${name} in sync (last status: ${last})`,
    () => {
      const s = mirrorStatus(name);
      last = `${s.inSync}/${s.regionCount}`;
      return s.inSync === s.regionCount && s.regionCount > 0;
    },
    timeoutMs,
    100,
  );
  return (Date.now() - started) / 1000;
}

// ---- fio ----

export interface FioResult {
  readonly iops: number;
  readonly bwBytes: number;
  readonly meanLatencyMs: number;
  readonly p99LatencyMs: number;
  readonly errors: number;
  readonly ios: number;
  readonly seconds: number;
  readonly exitCode: number;
  /** When the job started (ms since the epoch): its end, as fio stamps it, less its runtime. */
  readonly startedAtMs: number;
}

export interface FioJob {
  readonly device: string;
  readonly rw: "randwrite" | "write" | "randrw";
  readonly bs: string;
  readonly iodepth: number;
  readonly seconds: number;
  /** Restrict to [offset, offset + size) of the device (bytes). */
  readonly offset?: number;
  readonly size?: number;
  /** Write a bandwidth/IOPS log every this many ms (`<prefix>_iops.1.log`). */
  readonly logPrefix?: string;
  readonly logAvgMs?: number;
  /**
   * Write then read back and check every block (crc32c headers, fio's own verify): the job
   * is then size-based, `ioBytes` of writes (default: `size`) instead of `seconds`.
   */
  readonly verify?: boolean;
  readonly ioBytes?: number;
}

function fioArgs(job: FioJob): string[] {
  return [
    "--name=lab",
    `--filename=${job.device}`,
    `--rw=${job.rw}`,
    `--bs=${job.bs}`,
    `--iodepth=${job.iodepth}`,
    "--ioengine=libaio",
    "--direct=1",
    ...(job.verify
      ? [
          "--verify=crc32c",
          "--do_verify=1",
          "--verify_fatal=1",
          "--verify_state_save=0", // fio would leave a state file in the cwd, the checkout
          ...(job.ioBytes !== undefined ? [`--io_size=${job.ioBytes}`] : []),
        ]
      : ["--time_based", `--runtime=${job.seconds}`]),
    "--randrepeat=0",
    "--output-format=json",
    ...(job.offset !== undefined ? [`--offset=${job.offset}`] : []),
    ...(job.size !== undefined ? [`--size=${job.size}`] : []),
    ...(job.logPrefix
      ? [`--write_iops_log=${job.logPrefix}`, `--log_avg_msec=${job.logAvgMs ?? 1000}`]
      : []),
  ];
}

function parseFio(stdout: string, exitCode: number): FioResult {
  const start = stdout.indexOf("{");
  const json = JSON.parse(stdout.slice(start)) as {
    timestamp_ms: number;
    jobs: {
      error: number;
      job_runtime: number;
      write: {
        iops: number;
        bw_bytes: number;
        total_ios: number;
        lat_ns: { mean: number; percentile?: Record<string, number> };
        clat_ns?: { percentile?: Record<string, number> };
      };
    }[];
  };
  const job = json.jobs[0]!;
  const w = job.write;
  const p99 = w.clat_ns?.percentile?.["99.000000"] ?? 0;
  return {
    iops: w.iops,
    bwBytes: w.bw_bytes,
    meanLatencyMs: w.lat_ns.mean / 1e6,
    p99LatencyMs: p99 / 1e6,
    errors: job.error,
    ios: w.total_ios,
    seconds: job.job_runtime / 1000,
    exitCode,
    startedAtMs: json.timestamp_ms - job.job_runtime,
  };
}

export function fio(job: FioJob): FioResult {
  const r = spawnSync("fio", fioArgs(job), { encoding: "utf8", maxBuffer: 64 << 20 });
  if (!r.stdout.includes("{")) {
    throw new LabFailure(`fio failed (${r.status}): ${r.stderr.trim()}`);
  }
  return parseFio(r.stdout, r.status ?? -1);
}

/** fio in the background: resolves when it ends. */
export function fioAsync(job: FioJob): Promise<FioResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("fio", fioArgs(job), { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => {
      out += c;
    });
    child.stderr.on("data", (c) => {
      err += c;
    });
    child.on("close", (code) => {
      if (!out.includes("{")) reject(new LabFailure(`fio failed (${code}): ${err.trim()}`));
      else resolve(parseFio(out, code ?? -1));
    });
  });
}

/** IOPS per interval from a fio `write_iops_log` (`<ms>, <iops>, <dir>, …` lines). */
export function readIopsLog(prefix: string): { ms: number; iops: number }[] {
  const file = `${prefix}_iops.1.log`;
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [ms, iops] = line.split(",").map((f) => Number(f.trim()));
      return { ms: ms!, iops: iops! };
    });
}

// ---- the agent ----

export interface AgentOptions {
  readonly label: string;
  /** `clusterlog` (the cmirrord replacement alone) or `run` (the host agent). */
  readonly command: "clusterlog" | "run";
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** The line (pino `msg`) that says it is serving. */
  readonly ready?: RegExp;
  readonly readyTimeoutMs?: number;
}

interface LogLine {
  readonly msg?: string;
  readonly level?: number;
  readonly [key: string]: unknown;
}

/** The agent's production bundle, as a storage host runs it (`node cli.mjs …`). */
export class Agent {
  readonly label: string;
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly logFile: string;
  readonly startedAt = Date.now();
  #waiters: { match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }[] = [];

  private constructor(options: AgentOptions) {
    this.label = options.label;
    this.logFile = join(RUN_DIR, `${VM}-${options.label}.log`);
    this.child = spawn(
      "node",
      [
        "--enable-source-maps",
        // e.g. LAB_AGENT_NODE_ARGS="--cpu-prof --cpu-prof-dir=$LAB_RUN_DIR/prof" (profiling)
        ...(process.env.LAB_AGENT_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
        AGENT_CLI,
        options.command,
        ...options.args,
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...options.env },
      },
    );
    const onLine = (raw: string) => {
      appendFileSync(this.logFile, `${raw}\n`);
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        line = { msg: raw, level: 30 };
      }
      this.lines.push(line);
      if (
        (line.level ?? 30) >= 40 ||
        /serving|listening|stopped|failed|declared|resumed|re-arm/.test(line.msg ?? "")
      ) {
        say(`[${this.label}] ${line.msg ?? raw}`);
      }
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(line)) return true;
        w.resolve(line);
        return false;
      });
    };
    createInterface({ input: this.child.stdout! }).on("line", onLine);
    createInterface({ input: this.child.stderr! }).on("line", onLine);
    this.exited = new Promise((resolve) =>
      this.child.on("exit", (code, signal) => resolve({ code, signal })),
    );
  }

  static async start(options: AgentOptions): Promise<Agent> {
    const agent = new Agent(options);
    const ready = options.ready ?? /netlink connector: serving dm-log-userspace/;
    await Promise.race([
      agent.waitForLog(ready, options.readyTimeoutMs ?? 120_000),
      agent.exited.then((e) => {
        throw new LabFailure(
          `${options.label} exited before it served (${e.code ?? e.signal}); see ${agent.logFile}`,
        );
      }),
    ]);
    return agent;
  }

  /** The first log line from now whose `msg` matches. */
  waitForLog(match: RegExp, timeoutMs = 60_000): Promise<LogLine> {
    const seen = this.lines.find((l) => match.test(l.msg ?? ""));
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new LabFailure(`${this.label}: no log line matching ${match} in ${timeoutMs / 1000} s`),
          ),
        timeoutMs,
      );
      this.#waiters.push({
        match: (l) => match.test(l.msg ?? ""),
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async stop(
    signal: NodeJS.Signals = "SIGTERM",
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.kill(signal);
    return this.exited;
  }
}

/**
 * One HTTP exchange on a fresh connection (no keep-alive). A guest program blocks its event
 * loop for seconds in spawnSync (dd, cmp, dmsetup); a pooled connection the agent closed
 * meanwhile (its 5 s keep-alive) is then reused and fails with "other side closed".
 */
function agentHttp(
  port: number,
  token: string,
  method: "GET" | "POST",
  path: string,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        res.on("error", reject);
      },
    );
    req.on("error", (error) => reject(new LabFailure(`agent ${path}: ${error.message}`)));
    req.end(body);
  });
}

function trpcResult<T>(path: string, status: number, text: string): T {
  const body = JSON.parse(text) as { result?: { data?: { json?: T } }; error?: unknown };
  if (status >= 300 || !body.result) {
    throw new LabFailure(`agent ${path}: HTTP ${status} ${JSON.stringify(body.error)}`);
  }
  return body.result.data!.json as T;
}

/** The host agent's API port and token in the guest programs that run `run`. */
export const HOST_AGENT = { port: 7460, token: "lab-agent-token-0123456789" } as const;

/**
 * The host agent as a storage host runs it (`run`: the API, the cluster-log server in its
 * process serving the connector), node lab-1, its config in `$WORK/agent.json`; `config`
 * adds to or overrides that config (`clusterLog` is merged). Resolves once it serves the
 * kernel.
 */
export async function startHostAgent(config: Record<string, unknown> = {}): Promise<Agent> {
  const { clusterLog, ...rest } = config as { clusterLog?: Record<string, unknown> };
  const file = `${WORK}/agent.json`;
  writeFileSync(
    file,
    JSON.stringify({
      nodeId: "lab-1",
      root: "/",
      dataDir: `${WORK}/agent`,
      host: "127.0.0.1",
      port: HOST_AGENT.port,
      ...rest,
      clusterLog: {
        socket: `${WORK}/clusterlog.sock`,
        connector: "on",
        nodeId: 1,
        ...clusterLog,
      },
    }),
  );
  const agent = await Agent.start({
    label: "agent",
    command: "run",
    args: ["--config", file],
    env: { MIRRORPLANE_AGENT_TOKEN: HOST_AGENT.token },
    ready: /agent API listening/,
  });
  await agent.waitForLog(/netlink connector: serving/, 10_000);
  return agent;
}

/** A tRPC query on the agent's API (superjson envelope), from inside the guest. */
export async function agentQuery<T>(
  port: number,
  token: string,
  path: string,
  input?: unknown,
): Promise<T> {
  const query =
    input === undefined ? "" : `?input=${encodeURIComponent(JSON.stringify({ json: input }))}`;
  const { status, text } = await agentHttp(port, token, "GET", `/trpc/${path}${query}`);
  return trpcResult<T>(path, status, text);
}

export async function agentMutation<T>(
  port: number,
  token: string,
  path: string,
  input: unknown,
): Promise<T> {
  const { status, text } = await agentHttp(
    port,
    token,
    "POST",
    `/trpc/${path}`,
    JSON.stringify({ json: input }),
  );
  return trpcResult<T>(path, status, text);
}

/** The kernel's own log lines so far (dmesg), for what the mirror said. */
export function kernelLog(): string {
  return execFileSync("dmesg", { encoding: "utf8" });
}
