// Fairness under a hostile load (issue 14): one well-behaved client's depth-1 latency while
// hostile connections flood the same cluster-log server.
//   npm run bench:fairness -w @mirrorplane/agent   [-- seconds=5 hostile=4]
// Three processes, like a real host: the server (as the daemon), a hostile process that
// keeps `hostile` connections writing 1,024-frame bursts as fast as the socket takes them
// (the request mix of PB1 with one frame in eight mangled: flipped bytes, unknown types,
// oversized and wrong lengths), and this process as the good client: IS_CLEAN / FLUSH at
// depth 1 on its own log, its latency recorded for every request: alone, then beside the
// hostile load; each with the server's per-turn input limit and without it (the baseline).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createConnection, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks";
import { pino } from "pino";
import { InProcessOrder } from "../src/clusterlog/in-process-bus.ts";
import { FileLogDevices } from "../src/clusterlog/log-devices.ts";
import { ClusterLogServer } from "../src/clusterlog/server.ts";
import { BACKLOG_FRAMES_PER_TURN, FRAMES_PER_TURN } from "../src/clusterlog/session.ts";
import { ascii, buildRequest, u64, withLength } from "../testing/uapi-client.ts";

const REGIONS = 65_536;
const CTR = `${REGIONS * 1024} clustered-core 1024 nosync`;
const uuidOf = (name: string) => `LVM-fair-${name}`.padEnd(64, "x");

function request(uuid: string, type: number, seq: number, data?: Uint8Array): Buffer {
  return Buffer.from(
    withLength(buildRequest({ type, seq, uuid, luid: 7n, ...(data ? { data } : {}) })),
  );
}

// ---- the server (child) ----

async function serve(socketPath: string, framesPerTurn: number): Promise<void> {
  process.on("SIGINT", () => process.exit(0));
  const server = new ClusterLogServer({
    bus: new InProcessOrder().bus(1),
    devices: new FileLogDevices({ overrides: new Map() }),
    log: pino({ level: "error" }),
    framesPerTurn,
  });
  await server.start();
  await server.listenUnix(socketPath);
  // The server's own turns: how long its event loop was held at a time (what a reply
  // waiting on another connection's work waits, without the OS's scheduling on top).
  // The wall-clock delay counts the time the OS ran someone else (this machine is shared);
  // the CPU this process used per event-loop turn does not: that is the work one turn did
  // before any waiting reply could go out.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  let turns: number[] = [];
  let measuring = false;
  // The server's GC pauses while measuring (minor: scavenges; major: mark-compact), the
  // other thing a waiting reply waits behind.
  const gc = { minor: 0, minorMax: 0, major: 0, majorMax: 0 };
  new PerformanceObserver((list) => {
    if (!measuring) return;
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind ?? 0;
      if (kind === 1) {
        gc.minor++;
        gc.minorMax = Math.max(gc.minorMax, e.duration);
      } else if (kind === 4) {
        gc.major++;
        gc.majorMax = Math.max(gc.majorMax, e.duration);
      }
    }
  }).observe({ entryTypes: ["gc"] });
  let last = process.cpuUsage();
  const tick = () => {
    const now = process.cpuUsage();
    turns.push((now.user - last.user + now.system - last.system) / 1000);
    last = now;
    if (measuring) setImmediate(tick);
  };
  process.on("message", (m) => {
    if (m === "reset") {
      delay.reset();
      turns = [];
      Object.assign(gc, { minor: 0, minorMax: 0, major: 0, majorMax: 0 });
      measuring = true;
      last = process.cpuUsage();
      setImmediate(tick);
    }
    if (m === "report") {
      measuring = false;
      const sorted = [...turns].sort((a, b) => a - b);
      process.send?.({
        loopP99: delay.percentile(99) / 1e6,
        loopMax: delay.max / 1e6,
        turnP99: sorted[Math.floor(sorted.length * 0.99)] ?? 0,
        turnMax: sorted[sorted.length - 1] ?? 0,
        turns: sorted.length,
        gc,
      });
    }
  });
  process.send?.("ready");
}

// ---- the hostile load (child) ----

/** One 1,024-frame burst: the PB1 mix, one frame in eight mangled. */
function hostileBurst(uuid: string, seed: number): Buffer {
  const frames: Buffer[] = [];
  let x = seed >>> 0 || 1;
  const rand = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  for (let i = 0; i < 1024; i++) {
    const r = Math.floor(rand() * REGIONS);
    const type = [9, 7, 8, 11][i % 4]!;
    const frame = request(uuid, type, i + 10, u64(r));
    if (i % 8 === 7) {
      const kind = Math.floor(rand() * 4);
      if (kind === 0) {
        const at = 4 + Math.floor(rand() * 160);
        frame[at] = frame[at]! ^ 0xff; // a flipped byte
      } else if (kind === 1)
        frame.writeUInt32LE(200 + Math.floor(rand() * 50), 4 + 152); // unknown type
      else if (kind === 2)
        frame.writeUInt32LE(4096, 4 + 156); // data_size disagrees
      else {
        // An oversized frame: a length prefix past the largest frame, its bytes discarded.
        const big = Buffer.alloc(4 + 20_000);
        big.writeUInt32LE(20_000, 0);
        frame.copy(big, 4, 4);
        frames.push(big);
        continue;
      }
    }
    frames.push(frame);
  }
  return Buffer.concat(frames);
}

async function hostile(socketPath: string, connections: number): Promise<void> {
  process.on("SIGINT", () => process.exit(0));
  let sent = 0;
  for (let c = 0; c < connections; c++) {
    const uuid = uuidOf(`hostile-${c}`);
    const socket = createConnection(socketPath);
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    socket.on("data", () => {}); // replies read and dropped
    socket.on("error", () => {});
    socket.write(request(uuid, 1, 1, ascii(CTR)));
    socket.write(request(uuid, 5, 2));
    const bursts = [0, 1, 2, 3].map((k) => hostileBurst(uuid, c * 7919 + k + 1));
    let k = 0;
    const pump = () => {
      while (socket.write(bursts[k++ % bursts.length]!)) sent++;
      sent++;
    };
    socket.on("drain", pump);
    pump();
  }
  setInterval(() => process.send?.({ sent }), 500);
  process.send?.("ready");
}

// ---- the good client (this process) ----

interface ServerTurns {
  loopP99: number;
  loopMax: number;
  turnP99: number;
  turnMax: number;
  turns: number;
  gc: { minor: number; minorMax: number; major: number; majorMax: number };
}

interface Conn {
  socket: Socket;
  onReply: () => void;
}

function connect(path: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const conn: Conn = { socket, onReply: () => {} };
    let held: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      held = held.length ? Buffer.concat([held, chunk]) : chunk;
      while (held.length >= 4 && held.length - 4 >= held.readUInt32LE(0)) {
        held = held.subarray(4 + held.readUInt32LE(0));
        conn.onReply();
      }
    });
    socket.once("connect", () => resolve(conn));
    socket.once("error", reject);
  });
}

const ask = (conn: Conn, frame: Buffer) =>
  new Promise<void>((resolve) => {
    conn.onReply = resolve;
    conn.socket.write(frame);
  });

/** Depth-1 latencies (µs) for `seconds`, IS_CLEAN and FLUSH alternating. */
async function goodClient(conn: Conn, uuid: string, seconds: number): Promise<number[]> {
  const latencies: number[] = [];
  const deadline = Date.now() + seconds * 1000;
  let seq = 1000;
  while (Date.now() < deadline) {
    const r = seq % REGIONS;
    const frame = seq % 2 === 0 ? request(uuid, 7, seq, u64(r)) : request(uuid, 9, seq, u64(r));
    seq++;
    const t0 = process.hrtime.bigint();
    await ask(conn, frame);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  return latencies;
}

async function startChild(args: string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, ...args], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  await new Promise<void>((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if (m === "ready") {
        child.off("message", onMessage);
        resolve();
      }
    };
    child.on("message", onMessage);
    child.once("exit", (code) => reject(new Error(`${args[0]} exited ${code}`)));
  });
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

function summary(latencies: number[]): string {
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
  const ms = (us: number) => `${(us / 1000).toFixed(2)} ms`;
  return `${sorted.length.toLocaleString("en-US").padStart(8)} answers   p50 ${ms(at(0.5)).padStart(9)}   p99 ${ms(at(0.99)).padStart(9)}   max ${ms(sorted[sorted.length - 1]!).padStart(9)}`;
}

interface Run {
  quiet: number[];
  loaded: number[];
  hostileRate: number;
  turns: ServerTurns;
}

/** One server with `framesPerTurn`: the good client alone, then beside the hostile load. */
async function run(
  dir: string,
  framesPerTurn: number,
  seconds: number,
  connections: number,
): Promise<Run> {
  const socketPath = join(dir, `clog-${framesPerTurn}.sock`);
  const server = await startChild(["serve", socketPath, String(framesPerTurn)]);
  try {
    const uuid = uuidOf("good");
    const good = await connect(socketPath);
    await ask(good, request(uuid, 1, 1, ascii(CTR)));
    await ask(good, request(uuid, 5, 2));
    await goodClient(good, uuid, 0.5); // warm-up
    const quiet = await goodClient(good, uuid, Math.min(seconds, 2));
    const load = await startChild(["hostile", socketPath, String(connections)]);
    let bursts = 0;
    load.on("message", (m) => {
      if (typeof m === "object" && m !== null) bursts = (m as { sent: number }).sent;
    });
    await new Promise((r) => setTimeout(r, 500));
    server.send("reset");
    const before = bursts;
    const t0 = Date.now();
    const loaded = await goodClient(good, uuid, seconds);
    const hostileRate = ((bursts - before) * 1024) / ((Date.now() - t0) / 1000);
    const turns = await new Promise<ServerTurns>((resolve) => {
      const onMessage = (m: unknown) => {
        if (typeof m === "object" && m !== null && "turnMax" in m) {
          server.off("message", onMessage);
          resolve(m as ServerTurns);
        }
      };
      server.on("message", onMessage);
      server.send("report");
    });
    await stopChild(load);
    good.socket.destroy();
    return { quiet, loaded, hostileRate, turns };
  } finally {
    await stopChild(server);
  }
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const connections = Number(process.argv[3] ?? 4);
  const dir = await mkdtemp(join(tmpdir(), "mp-bench-fairness-"));
  const f = (n: number) => Math.round(n).toLocaleString("en-US");
  try {
    console.log(
      `fairness: one good client at depth 1 (IS_CLEAN / FLUSH) beside ${connections} hostile connections writing 1,024-frame bursts (1 in 8 mangled), ${seconds} s per run`,
    );
    // Alternate so this shared machine's drift hits both alike.
    for (let round = 0; round < 2; round++) {
      for (const [label, budget] of [
        ["unbounded (no per-turn limit) ", Number.POSITIVE_INFINITY],
        [
          `${FRAMES_PER_TURN} frames/turn/connection, ${BACKLOG_FRAMES_PER_TURN}/turn for all backlogs`,
          FRAMES_PER_TURN,
        ],
      ] as const) {
        const r = await run(dir, budget, seconds, connections);
        console.log(`${label}`);
        console.log(`  alone          ${summary(r.quiet)}`);
        console.log(`  under attack   ${summary(r.loaded)}`);
        console.log(
          `  server CPU per event-loop turn: p99 ${r.turns.turnP99.toFixed(2)} ms, max ${r.turns.turnMax.toFixed(2)} ms; wall-clock loop delay p99 ${r.turns.loopP99.toFixed(2)} ms, max ${r.turns.loopMax.toFixed(2)} ms; hostile input ${f(r.hostileRate)} frames/s`,
        );
        const g = r.turns.gc;
        console.log(
          `  server GC under attack: ${g.minor} scavenges (longest ${g.minorMax.toFixed(1)} ms), ${g.major} mark-compacts (longest ${g.majorMax.toFixed(1)} ms)`,
        );
      }
    }
    console.log("target: no connection's input delays another's reply by more than ~20 ms");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "serve") await serve(process.argv[3]!, Number(process.argv[4]));
else if (process.argv[2] === "hostile") await hostile(process.argv[3]!, Number(process.argv[4]));
else await main();
