import { MemoryBlockDevice, NO_NODE } from "@mirrorplane/clusterlog";
import fc from "fast-check";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ascii, buildRequest, parseReply, u64, withLength } from "../../testing/uapi-client.ts";
import { InProcessOrder } from "./in-process-bus.ts";
import type { IoOutcome, LogDevice, LogDeviceProvider } from "./log-devices.ts";
import { ClusterLogServer } from "./server.ts";
import type { Session } from "./session.ts";

// Simulation through the bus: N ClusterLogServers on one in-process order (sessions fed
// in memory instead of sockets, a shared in-memory log device), random requests, joins
// from snapshots, graceful leaves, failures and held publications. After every step, once
// quiet: all live replicas agree byte for byte, no region a live node has marked is
// clean, at most one live recoverer holds the slot, the sync count equals the set bits,
// and every request of a live session got exactly one reply. Fixed seed: deterministic.

const UUID = "LVM-sim";
const REGIONS = 24;
const CTR = `${REGIONS * 1024} clustered-disk 7:0 1024`;
const silent = pino({ level: "silent" });

class SharedDisk implements LogDeviceProvider {
  readonly device = new MemoryBlockDevice(64 * 1024);
  async open(): Promise<IoOutcome<LogDevice>> {
    const d = this.device;
    const wrap = <T>(r: { ok: true; value: T } | { ok: false; error: number }): IoOutcome<T> =>
      r.ok ? r : { ok: false, errno: r.error, message: "memory device" };
    return {
      ok: true,
      value: {
        read: async (length) => wrap(d.read(0, length)),
        writeDurably: async (image) => {
          const w = d.write(0, image);
          return wrap(w.ok ? d.flush() : w);
        },
        close: async () => {},
      },
    };
  }
}

interface Member {
  readonly node: number;
  readonly server: ClusterLogServer;
  readonly session: Session;
  seq: number;
  readonly sent: Set<number>;
  readonly replies: Map<number, number>;
}

type Step =
  | { k: "req"; who: number; type: number; regions: number[]; flag: boolean }
  | { k: "join" }
  | { k: "leave"; who: number }
  | { k: "fail"; who: number }
  | { k: "hold"; on: boolean }
  | { k: "snapshot"; who: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.record({
      k: fc.constant("req" as const),
      who: fc.nat(9),
      type: fc.constantFrom(1, 5, 5, 7, 8, 9, 9, 10, 11, 11, 12, 12, 13, 13, 14, 17, 4, 3, 2),
      regions: fc.array(fc.nat(REGIONS - 1), { maxLength: 3 }),
      flag: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ k: "join" as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("leave" as const), who: fc.nat(9) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("fail" as const), who: fc.nat(9) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("hold" as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("snapshot" as const), who: fc.nat(9) }) },
);

async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

async function run(steps: Step[]): Promise<{ agreed: number; handedOut: number }> {
  let holding = false;
  const order = new InProcessOrder({ onPublish: () => (holding ? "hold" : "order") });
  const disk = new SharedDisk();
  const members: Member[] = [];
  let nextNode = 1;
  let handedOut = 0;
  let agreed = 0;

  const join = async () => {
    const node = nextNode++;
    const server = new ClusterLogServer({
      bus: order.bus(node),
      devices: disk,
      log: silent,
      snapshotEvery: 0,
      snapshotIntervalMs: 0,
    });
    await server.start();
    const member: Member = {
      node,
      server,
      seq: 1,
      sent: new Set(),
      replies: new Map(),
      session: server.openSession({
        write: (bytes) => {
          for (let off = 0; off < bytes.length; ) {
            const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(off, true);
            const reply = parseReply(bytes.slice(off + 4, off + 4 + len));
            member.replies.set(reply.seq, (member.replies.get(reply.seq) ?? 0) + 1);
            if (reply.requestType === 12 && reply.error === 0 && reply.data[0] === 1) handedOut++;
            off += 4 + len;
          }
        },
        end: () => {},
      }),
    };
    members.push(member);
  };

  const send = (m: Member, type: number, data?: Uint8Array) => {
    const seq = m.seq++;
    m.sent.add(seq);
    m.session.receive(
      withLength(
        buildRequest({ type, seq, uuid: UUID, luid: BigInt(m.node), ...(data ? { data } : {}) }),
      ),
    );
  };

  const check = (where: string) => {
    const live = members;
    if (live.length === 0) return;
    const reference = live[0]!.server.clusterLog.snapshot();
    for (const m of live) {
      expect(m.server.lastSeq, where).toBe(order.lastSeq);
      expect(
        Buffer.from(m.server.clusterLog.snapshot()).equals(Buffer.from(reference)),
        where,
      ).toBe(true);
    }
    agreed++;
    const group = live[0]!.server.clusterLog.state.groups.get(UUID);
    if (group) {
      const liveNodes = new Set(live.map((m) => m.node));
      for (const [region, nodes] of group.markers) {
        if (nodes.some((n) => liveNodes.has(n))) {
          expect(group.cleanBits.test(region), `${where}: marked region ${region} clean`).toBe(
            false,
          );
        }
      }
      if (group.recoverer !== NO_NODE) {
        expect(
          group.members.map((m) => m.node),
          `${where}: recoverer not a member`,
        ).toContain(group.recoverer);
      }
      let set = 0;
      for (let r = 0; r < group.regionCount; r++) if (group.syncBits.test(r)) set++;
      expect(group.syncBits.count, `${where}: sync count`).toBe(set);
    }
    if (!holding && order.held.length === 0) {
      for (const m of live) {
        for (const seq of m.sent)
          expect(m.replies.get(seq), `${where}: node ${m.node} seq ${seq}`).toBe(1);
      }
    }
  };

  for (let i = 0; i < 3; i++) await join();
  for (const [i, s] of steps.entries()) {
    const where = `step ${i} ${JSON.stringify(s)}`;
    const m = members.length > 0 && "who" in s ? members[s.who % members.length]! : null;
    switch (s.k) {
      case "req": {
        if (!m) break;
        const data =
          s.type === 1
            ? ascii(CTR)
            : s.type === 13
              ? u64(s.regions[0] ?? 0, s.flag ? 1 : 0)
              : [7, 8, 17].includes(s.type)
                ? u64(s.regions[0] ?? 0)
                : [9, 10, 11].includes(s.type) && (s.type !== 9 || s.flag)
                  ? u64(...s.regions)
                  : undefined;
        send(m, s.type, data);
        break;
      }
      case "join":
        if (members.length < 5) await join();
        break;
      case "leave":
        if (m) {
          members.splice(members.indexOf(m), 1);
          await m.server.stop({ drainTimeoutMs: 50 });
        }
        break;
      case "fail":
        if (m) {
          members.splice(members.indexOf(m), 1);
          order.fail(m.node);
          m.session.lost();
        }
        break;
      case "hold":
        holding = s.on;
        if (!s.on) order.releaseAll();
        break;
      case "snapshot":
        m?.server.saveSnapshot();
        break;
    }
    await settle();
    check(where);
  }
  holding = false;
  order.releaseAll();
  await settle();
  check("end");
  for (const m of members) await m.server.stop({ drainTimeoutMs: 50 });
  return { agreed, handedOut };
}

describe("simulation: N servers over the in-process bus", () => {
  it("replicas agree byte for byte and keep the invariants under joins, leaves, failures and held publications", async () => {
    let handedOut = 0;
    let agreed = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 20, maxLength: 80 }), async (steps) => {
        const result = await run(steps);
        handedOut += result.handedOut;
        agreed += result.agreed;
      }),
      {
        numRuns: Number(process.env.MIRRORPLANE_SERVER_SIM_RUNS ?? 25),
        seed: Number(process.env.MIRRORPLANE_SERVER_SIM_SEED ?? 0x51a),
      },
    );
    expect(handedOut).toBeGreaterThan(0);
    expect(agreed).toBeGreaterThan(500);
  });
});
