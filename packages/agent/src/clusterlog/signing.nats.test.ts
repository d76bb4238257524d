import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NatsServer, natsServerBinary } from "@mirrorplane/simulator/nats-server";
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { coreLogArgs, KernelRequests } from "../../testing/kernel-requests.ts";
import { eventually, Kernel } from "../../testing/server-harness.ts";
import { TestClient } from "../../testing/uapi-client.ts";
import { JetStreamBus, jetStreamNames } from "./jetstream-bus.ts";
import { FileLogDevices } from "./log-devices.ts";
import { ephemeralClusterKeys, sealEnvelope } from "./member-keys.ts";
import { encodeEnvelope } from "./operation-codec.ts";
import { ClusterLogServer } from "./server.ts";

// Issue 15, hole 2: anyone who could publish on NATS could forge an operation of the
// replicated log — a plain publish of SET_REGION_SYNC(500, 1) turned IN_SYNC(500) from 0
// to 1 with nothing copied. Here three signed members share a core log with every region
// out of sync, and the attack is repeated straight on the cluster's subject: unsigned,
// signed with a key nobody trusts, and a member's real message replayed under another
// message id. No replica applies any of them; each is counted and logged.

const UUID = "LVM-signing";
const CLUSTER = "signing";
const REGIONS = 1024;
const keys = ephemeralClusterKeys([1, 2, 3]);

let nats: NatsServer;
let dir: string;

interface Agent {
  bus: JetStreamBus;
  server: ClusterLogServer;
  kernel: Kernel;
  lines: string[];
}

async function startAgent(id: number): Promise<Agent> {
  const lines: string[] = [];
  const log = pino({ level: "info" }, { write: (l: string) => lines.push(l) });
  const bus = new JetStreamBus({
    nodeId: id,
    servers: nats.url,
    cluster: CLUSTER,
    memberKeys: keys.get(id)!,
    failureTimeoutMs: 5_000,
    heartbeatIntervalMs: 500,
    logger: log,
  });
  const server = new ClusterLogServer({
    bus,
    devices: new FileLogDevices({ root: "/" }),
    log,
    snapshotIntervalMs: 0,
  });
  await server.start();
  const socket = join(dir, `node-${id}.sock`);
  await server.listenUnix(socket);
  const kernel = new Kernel(await TestClient.connect(socket));
  kernel.uuid = UUID;
  kernel.luid = BigInt(id) * 0x100n + 1n;
  return { bus, server, kernel, lines };
}

describe.skipIf(natsServerBinary() === null)("signed envelopes over JetStream (issue 15)", () => {
  beforeAll(async () => {
    nats = await NatsServer.start();
    dir = await mkdtemp(join(tmpdir(), "mp-signing-"));
  });
  afterAll(async () => {
    await nats?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a forged SET_REGION_SYNC published on the cluster's subject is applied by no replica", async () => {
    const agents = [await startAgent(1), await startAgent(2), await startAgent(3)];
    try {
      for (const a of agents) await a.kernel.up(coreLogArgs(REGIONS, "sync"));
      for (const a of agents) {
        expect(await a.kernel.inSync(500)).toBe(0);
        expect(await a.kernel.syncCount()).toBe(0);
      }

      // The attacker: a plain NATS client, no member key.
      const nc = await connect({ servers: nats.url });
      const js = jetstream(nc);
      const subject = jetStreamNames(CLUSTER).logSubject(UUID);
      const forged = (n: number, origin = 1) => {
        const request = new KernelRequests(UUID, 0x101n);
        request.seq = 1000 + n;
        return encodeEnvelope({
          origin,
          op: { kind: "request", node: origin, request: request.setRegionSync(500, true) },
          incarnation: "",
        });
      };
      const before = agents.map((a) => a.server.lastSeq);
      // 1. unsigned, as before issue 15
      await js.publish(subject, forged(1), { msgID: "forged-1" });
      // 2. signed with the attacker's own key, claiming node 1
      const rogue = generateKeyPairSync("ed25519").privateKey;
      await js.publish(subject, sealEnvelope(rogue, CLUSTER, "forged-2", Date.now(), forged(2)), {
        msgID: "forged-2",
      });
      // 3. node 1's own signed SET_REGION_SYNC... for another message id (a replay)
      const sealed = sealEnvelope(
        keys.get(1)!.privateKey!,
        CLUSTER,
        "r:1:x:1",
        Date.now(),
        forged(3),
      );
      await js.publish(subject, sealed, { msgID: "forged-3" });
      // 4. a signed message with a publish time outside the duplicate window
      const stale = sealEnvelope(
        keys.get(1)!.privateKey!,
        CLUSTER,
        "forged-4",
        Date.now() - 3_600_000,
        forged(4),
      );
      await js.publish(subject, stale, { msgID: "forged-4" });
      // 5. signed by the attacker as a node nobody knows
      await js.publish(
        subject,
        sealEnvelope(rogue, CLUSTER, "forged-5", Date.now(), forged(5, 9)),
        {
          msgID: "forged-5",
        },
      );
      await nc.close();

      await eventually(
        () => agents.every((a, i) => a.server.lastSeq >= before[i]! + 5),
        "every replica past the forged messages",
      );
      for (const a of agents) {
        expect(a.bus.stats.refused).toBe(5);
        expect(await a.kernel.inSync(500)).toBe(0);
        expect(await a.kernel.syncCount()).toBe(0);
        const warnings = a.lines.filter((l) => l.includes("refused an operation"));
        expect(warnings.length).toBe(4); // four reasons, one line each (a minute)
        const text = warnings.join("\n");
        expect(text).toContain(subject);
        expect(text).toContain("claiming node 1");
        expect(text).toContain("claiming node 9");
        for (const reason of [
          "unsigned operation",
          "bad signature",
          "publish time outside",
          "unknown signer",
        ]) {
          expect(text).toContain(reason);
        }
      }
      // The order goes on past the holes: a member's own (signed) operation applies everywhere.
      expect((await agents[1]!.kernel.setRegionSync(500, true)).error).toBe(0);
      await eventually(() => {
        const s = agents.map((a) => a.server.lastSeq);
        return s.every((x) => x === s[0]);
      }, "replicas caught up");
      for (const a of agents) expect(await a.kernel.inSync(500)).toBe(1);
      for (const a of agents) {
        const hex = Buffer.from(a.server.clusterLog.snapshot()).toString("hex");
        expect(hex).toBe(Buffer.from(agents[0]!.server.clusterLog.snapshot()).toString("hex"));
      }
    } finally {
      for (const a of agents) {
        a.kernel.client.destroy();
        await a.server.stop({ drainTimeoutMs: 1_000 });
      }
    }
  }, 60_000);

  it("a member refuses to start without keys unless insecureUnsigned", () => {
    expect(() => new JetStreamBus({ nodeId: 1, servers: "nats://127.0.0.1:1" })).toThrow(
      /--member-key/,
    );
    expect(
      () => new JetStreamBus({ nodeId: 1, servers: "nats://127.0.0.1:1", insecureUnsigned: true }),
    ).not.toThrow();
  });
});
