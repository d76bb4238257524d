import { parseArgs } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  Agent,
  check,
  createMirror,
  diskBySerial,
  fio,
  fioAsync,
  guestMain,
  mirrorStatus,
  Results,
  say,
  sh,
  step,
  WORK,
  waitInSync,
} from "./lib.ts";

// One host of three (three.lab.test.ts): its own kernel, dm-raid1 and agent, the legs on
// virtio disks every VM shares, one JetStream on the host machine's 127.0.0.1 reached over
// the virtio-serial mux. The host test is the coordinator: each phase ends at a barrier
// (a NATS request answered once every expected host has asked, after the host test has
// compared the leg files byte for byte where the phase calls for it).
//
//   agents    every agent has joined the cluster
//   created   every host has the mirror (same uuid, same legs)
//   synced    the initial sync is done (the host checks the legs are identical)
//   written   each host wrote its own third with fio, verified (legs identical)
//   loaded    each host writes under load; the host test then kills host 3's QEMU
//   survived  (hosts 1, 2) fio ended without an error, host 3 was declared failed, its
//             marked regions resynced (legs identical)
//   rejoined  (all, host 3 booted again) the mirror is back on host 3
//   done      each host wrote and verified its third again (legs identical)

const { values } = parseArgs({
  options: {
    node: { type: "string" },
    nodes: { type: "string", default: "3" },
    cluster: { type: "string" },
    rejoin: { type: "boolean", default: false },
    "load-seconds": { type: "string", default: "40" },
  },
});

const NODE = Number(values.node);
const NODES = Number(values.nodes);
const CLUSTER = values.cluster ?? "lab-three";
const UUID = `${CLUSTER}-mirror`;
const REGION_SECTORS = 512;
/** NATS as the guest sees it (lab.ts forwards this port to the host's nats-server). */
const NATS_URL = "nats://127.0.0.1:4222";
/** The coordinator (three.lab.test.ts) answers barriers on this subject. */
const BARRIER = `lab.${CLUSTER}.barrier`;

interface BarrierReply {
  readonly ok: boolean;
  readonly detail?: string;
}

async function barrier(nc: NatsConnection, phase: string, extra: object = {}): Promise<void> {
  say(`barrier ${phase}: waiting for the other hosts`);
  const reply = await nc.request(BARRIER, JSON.stringify({ phase, node: NODE, ...extra }), {
    timeout: 15 * 60_000,
  });
  const answer = reply.json<BarrierReply>();
  check(answer.ok, `barrier ${phase}: the coordinator says ${answer.detail ?? "no"}`);
  say(`barrier ${phase}: passed${answer.detail ? ` (${answer.detail})` : ""}`);
}

/** This host's third of the mirror, in bytes, region-aligned. */
function third(sizeBytes: number): { offset: number; size: number } {
  const regionBytes = REGION_SECTORS * 512;
  const regions = Math.floor(sizeBytes / regionBytes);
  const per = Math.floor(regions / NODES);
  return { offset: (NODE - 1) * per * regionBytes, size: per * regionBytes };
}

guestMain(async () => {
  const results = new Results();
  const leg0 = diskBySerial("leg0");
  const leg1 = diskBySerial("leg1");
  const sizeSectors = Number(sh("blockdev", ["--getsz", leg0]).trim());
  const nc = await connect({ servers: NATS_URL, name: `lab-host-${NODE}` });

  step(`host ${NODE}: the agent joins the cluster over NATS`);
  const agent = await Agent.start({
    label: `agent${NODE}`,
    command: "clusterlog",
    args: [
      "--socket",
      `${WORK}/clusterlog.sock`,
      "--data-dir",
      `${WORK}/agent`,
      "--connector",
      "on",
      "--nats",
      NATS_URL,
      "--cluster",
      CLUSTER,
      "--node-id",
      String(NODE),
      ...(process.env.LAB_AGENT_ARGS ? process.env.LAB_AGENT_ARGS.split(" ") : []),
    ],
  });
  if (!values.rejoin) await barrier(nc, "agents");

  step(`host ${NODE}: the mirror, on the shared legs`);
  const dev = createMirror({
    name: "mir",
    uuid: UUID,
    sizeSectors,
    regionSectors: REGION_SECTORS,
    legs: [leg0, leg1],
  });
  const { offset, size } = third(sizeSectors * 512);

  if (!values.rejoin) {
    await barrier(nc, "created");
    const syncSeconds = await waitInSync("mir", 600_000);
    results.set("initialSyncSeconds", syncSeconds);
    say(`in sync after ${syncSeconds.toFixed(1)} s`);
    await barrier(nc, "synced");

    step(`host ${NODE}: fio writes its third (${offset}+${size}), verified`);
    const written = fio({
      device: dev,
      rw: "randwrite",
      bs: "4k",
      iodepth: 8,
      seconds: 0,
      offset,
      size,
      verify: true,
      ioBytes: 2 << 20,
    });
    results.set("written", written);
    say(`fio: ${written.ios} writes, ${written.iops.toFixed(0)} IOPS, errors ${written.errors}`);
    check(written.errors === 0 && written.exitCode === 0, `fio failed: ${JSON.stringify(written)}`);
    await waitInSync("mir", 120_000);
    await barrier(nc, "written");

    step(`host ${NODE}: writes under load while host 3 is killed`);
    const seconds = Number(values["load-seconds"]);
    const load = fioAsync({
      device: dev,
      rw: "randwrite",
      bs: "4k",
      iodepth: 8,
      seconds,
      offset,
      size,
    });
    // The coordinator kills host 3 a few seconds after every host is writing, and answers
    // once a survivor has declared it failed.
    await barrier(nc, "loaded");
    if (NODE === 3) {
      await load; // not reached: this host is killed mid-write
      return;
    }
    // The fewest regions in sync seen from here: host 3's marked regions go out of sync
    // once it is declared failed, and are resynced.
    let fewest = Number.POSITIVE_INFINITY;
    const poll = setInterval(() => {
      fewest = Math.min(fewest, mirrorStatus("mir").inSync);
    }, 500);
    await barrier(nc, "declared");
    const loaded = await load;
    results.set("underKill", loaded);
    say(`fio: ${loaded.ios} writes, ${loaded.iops.toFixed(0)} IOPS, errors ${loaded.errors}`);
    check(loaded.errors === 0 && loaded.exitCode === 0, `fio failed: ${JSON.stringify(loaded)}`);
    const after = mirrorStatus("mir");
    say(`after host 3 failed: ${after.inSync}/${after.regionCount} in sync`);
    const resync = await waitInSync("mir", 600_000);
    clearInterval(poll);
    results.set("resyncAfterFailureSeconds", resync);
    results.set("fewestInSyncAfterFailure", fewest);
    say(`fewest in sync seen: ${fewest}; in sync again ${resync.toFixed(1)} s after fio ended`);
    await barrier(nc, "survived", { inSync: fewest });
  }

  if (values.rejoin || NODE !== 3) {
    await barrier(nc, "rejoined");
    await waitInSync("mir", 600_000);
    step(`host ${NODE}: fio writes its third again, verified`);
    const again = fio({
      device: dev,
      rw: "randwrite",
      bs: "4k",
      iodepth: 8,
      seconds: 0,
      offset,
      size,
      verify: true,
      ioBytes: 1 << 20,
    });
    results.set("afterRejoin", again);
    say(`fio: ${again.ios} writes, errors ${again.errors}`);
    check(again.errors === 0 && again.exitCode === 0, `fio failed: ${JSON.stringify(again)}`);
    await waitInSync("mir", 120_000);
    await barrier(nc, "done");
    sh("dmsetup", ["remove", "mir"]);
    await agent.stop();
  }
  await nc.close();
});
