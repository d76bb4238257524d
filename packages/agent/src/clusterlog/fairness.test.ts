import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ascii, buildRequest, u64, withLength } from "../../testing/uapi-client.ts";
import { InProcessOrder } from "./in-process-bus.ts";
import { FileLogDevices } from "./log-devices.ts";
import { ClusterLogServer } from "./server.ts";
import { BACKLOG_FRAMES_PER_TURN, FRAMES_PER_TURN, type SessionSink } from "./session.ts";

// Fairness between connections (issue 14): a connection's input is taken at most
// FRAMES_PER_TURN frames per event-loop turn, so another connection's reply goes out
// behind one slice of a flood, never behind the whole flood. Counted in frames, not timed
// (STYLE.md: durations belong in bench/fairness.ts).

const CTR = "40960 clustered-core 1024";
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

function request(uuid: string, type: number, seq: number, data?: Uint8Array): Uint8Array {
  return withLength(buildRequest({ type, seq, uuid, luid: 1n, ...(data ? { data } : {}) }));
}

function concat(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const f of frames) {
    out.set(f, at);
    at += f.length;
  }
  return out;
}

/** A sink counting the replies it was given and what it was asked about reading. */
function countingSink() {
  const sink = {
    replies: 0,
    seqs: [] as number[],
    paused: 0,
    resumed: 0,
    write(bytes: Uint8Array) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let at = 0; at < bytes.length; at += 4 + view.getUint32(at, true)) {
        sink.replies++;
        sink.seqs.push(view.getUint32(at + 4 + 148, true));
      }
    },
    end() {},
    pauseInput() {
      sink.paused++;
    },
    resumeInput() {
      sink.resumed++;
    },
  };
  return sink satisfies SessionSink;
}

let server: ClusterLogServer | null = null;
afterEach(async () => {
  await server?.stop({ drainTimeoutMs: 100 });
  server = null;
});

async function started(): Promise<ClusterLogServer> {
  server = new ClusterLogServer({
    bus: new InProcessOrder().bus(1),
    devices: new FileLogDevices({ overrides: new Map() }),
    log: pino({ level: "silent" }),
    snapshotIntervalMs: 0,
  });
  await server.start();
  return server;
}

async function up(s: ClusterLogServer, uuid: string) {
  const sink = countingSink();
  const session = s.openSession(sink);
  session.receive(concat([request(uuid, 1, 1, ascii(CTR)), request(uuid, 5, 2)]));
  await turn();
  await turn();
  expect(sink.replies).toBe(2);
  return { sink, session };
}

describe("fairness between connections", () => {
  it("a flood is taken a slice per turn: another client's reply goes out behind one slice", async () => {
    const s = await started();
    const flood = await up(s, "LVM-flood");
    const good = await up(s, "LVM-good");
    const frames = 20 * FRAMES_PER_TURN;
    const burst = concat(
      Array.from({ length: frames }, (_, i) => request("LVM-flood", 7, 100 + i, u64(i % 4096))),
    );
    flood.session.receive(burst);
    // The flood asked its transport to stop reading until its backlog is served.
    expect(flood.sink.paused).toBe(1);
    good.session.receive(request("LVM-good", 7, 9, u64(3)));
    await turn();
    expect(good.sink.seqs.at(-1)).toBe(9);
    // By the time the good reply went out, the flood had one slice taken, not all of it.
    expect(flood.sink.replies - 2).toBeLessThanOrEqual(FRAMES_PER_TURN);

    // The rest follows, a slice a turn, each answered once and in order; reading resumes.
    let turns = 0;
    while (flood.sink.replies - 2 < frames && turns < 1000) {
      const before = flood.sink.replies;
      await turn();
      turns++;
      expect(flood.sink.replies - before).toBeLessThanOrEqual(FRAMES_PER_TURN);
    }
    expect(flood.sink.seqs.slice(2)).toEqual(Array.from({ length: frames }, (_, i) => 100 + i));
    expect(turns).toBeGreaterThanOrEqual(frames / FRAMES_PER_TURN - 1);
    expect(flood.sink.resumed).toBe(1);
  });

  it("input arriving while a backlog waits is kept behind it, in order", async () => {
    const s = await started();
    const flood = await up(s, "LVM-flood");
    const first = concat(
      Array.from({ length: 3 * FRAMES_PER_TURN }, (_, i) =>
        request("LVM-flood", 8, 1000 + i, u64(i)),
      ),
    );
    flood.session.receive(first);
    // A frame split across the next two chunks, pushed while the backlog still waits.
    const last = request("LVM-flood", 8, 7777, u64(1));
    flood.session.receive(last.subarray(0, 50));
    flood.session.receive(last.subarray(50));
    for (let i = 0; i < 10; i++) await turn();
    expect(flood.sink.seqs.slice(2)).toEqual([
      ...Array.from({ length: 3 * FRAMES_PER_TURN }, (_, i) => 1000 + i),
      7777,
    ]);
  });

  it("many floods together get a bounded share of a turn, round-robin, whatever their number", async () => {
    const s = await started();
    const floods: Awaited<ReturnType<typeof up>>[] = [];
    for (let i = 0; i < 16; i++) floods.push(await up(s, `LVM-flood-${i}`));
    const good = await up(s, "LVM-good");
    const per = 6 * FRAMES_PER_TURN;
    for (const [i, flood] of floods.entries()) {
      flood.session.receive(
        concat(
          Array.from({ length: per }, (_, k) => request(`LVM-flood-${i}`, 7, 100 + k, u64(k))),
        ),
      );
    }
    const answered = () => floods.reduce((n, f) => n + f.sink.replies - 2, 0);
    await turn(); // the first slices, taken as the input arrived, go out
    for (let round = 0; round < 8; round++) {
      const before = answered();
      good.session.receive(request("LVM-good", 7, 50 + round, u64(3)));
      await turn();
      expect(good.sink.seqs.at(-1)).toBe(50 + round);
      // Ahead of the good reply in that turn: the backlogs' budget, not 16 slices.
      expect(answered() - before).toBeLessThanOrEqual(BACKLOG_FRAMES_PER_TURN);
      expect(answered() - before).toBeGreaterThan(0);
    }
    for (let turns = 0; answered() < 16 * per && turns < 1000; turns++) await turn();
    for (const flood of floods) {
      expect(flood.sink.seqs.slice(2)).toEqual(Array.from({ length: per }, (_, k) => 100 + k));
      expect(flood.sink.resumed).toBe(1);
    }
  });
});
