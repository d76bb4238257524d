// PB4 (docs/PERF.md): three cluster members over NATS JetStream on loopback, ordered
// MARK / FLUSH / CLEAR round trips at an offered 2,000 requests/s (open loop: requests are
// sent on schedule, not when the previous one is answered). Prints p50/p99 per request
// type and, as the same-run baseline, the plain JetStream publish→ack round trip.
//
//   npm run bench:cluster -w @mirrorplane/agent        (about 15 s; needs nats-server)
//   BENCH_RATE=2000 BENCH_SECONDS=5 npm run bench:cluster -w @mirrorplane/agent
import { MemoryBlockDevice, type Reply } from "@mirrorplane/clusterlog";
import { NatsServer } from "@mirrorplane/simulator/nats-server";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { JetStreamBus } from "../src/clusterlog/jetstream-bus.ts";
import { ephemeralClusterKeys } from "../src/clusterlog/member-keys.ts";
import { BusReplica } from "../testing/bus-replica.ts";
import { diskLogArgs, KernelRequests } from "../testing/kernel-requests.ts";

const RATE = Number(process.env.BENCH_RATE ?? 2000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REGIONS = 4096;
/** BENCH_SIGNED=0 measures unsigned envelopes (`insecureUnsigned`), the figure before issue 15. */
const SIGNED = process.env.BENCH_SIGNED !== "0";

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summary(name: string, samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  const f = (v: number) => `${v.toFixed(2)} ms`.padStart(10);
  return `${name.padEnd(26)} n=${String(s.length).padStart(6)}  p50 ${f(percentile(s, 50))}  p99 ${f(percentile(s, 99))}  max ${f(s[s.length - 1] ?? Number.NaN)}`;
}

async function baseline(url: string): Promise<number[]> {
  // Same server, same rate: a publish into a scratch stream and its ack, nothing else.
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "BENCH_BASELINE", subjects: ["bench.baseline"] });
  const js = jetstream(nc);
  const samples: number[] = [];
  const total = RATE * Math.min(SECONDS, 3);
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    pending.push(
      js.publish("bench.baseline", new Uint8Array(200), { msgID: `b${i}` }).then(() => {
        samples.push(performance.now() - t0);
      }),
    );
  }
  await Promise.all(pending);
  await jsm.streams.delete("BENCH_BASELINE");
  await nc.close();
  return samples;
}

async function main(): Promise<void> {
  const nats = await NatsServer.start();
  const device = new MemoryBlockDevice(1 << 20);
  const members: { replica: BusReplica; kernel: KernelRequests; bus: JetStreamBus }[] = [];
  try {
    const base = await baseline(nats.url);
    const keys = ephemeralClusterKeys([1, 2, 3]);
    for (const node of [1, 2, 3]) {
      const logger = process.env.BENCH_DEBUG
        ? {
            info: (o: object, m: string) => console.error(node, m, o),
            warn: (o: object, m: string) =>
              console.error(node, m, String((o as { err?: unknown }).err ?? "")),
            error: (o: object, m: string) => console.error(node, m, o),
          }
        : undefined;
      const bus = new JetStreamBus({
        nodeId: node,
        servers: nats.url,
        cluster: "bench",
        ...(SIGNED ? { memberKeys: keys.get(node)! } : { insecureUnsigned: true }),
        ...(logger ? { logger } : {}),
      });
      const replica = new BusReplica({ bus, resolveDevice: () => device });
      await replica.start();
      const kernel = new KernelRequests("LVM-bench", BigInt(node));
      members.push({ replica, kernel, bus });
    }
    for (const m of members) {
      if ((await m.replica.request(m.kernel.ctr(diskLogArgs(REGIONS, "7:0", "nosync")))).error)
        throw new Error("CTR failed");
      for (;;) {
        const r = await m.replica.request(m.kernel.resume());
        if (r.error === 0) break;
      }
    }

    const samples = { MARK: [] as number[], FLUSH: [] as number[], CLEAR: [] as number[] };
    const total = RATE * SECONDS;
    const pending: Promise<void>[] = [];
    const start = performance.now();
    let late = 0;
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      else if (wait < -5) late++;
      const memberIndex = i % 3;
      const m = members[memberIndex]!;
      const step = Math.floor(i / 3);
      // Each member cycles FLUSH+mark r, CLEAR r, MARK r', CLEAR r' over its own regions.
      const region = memberIndex * 1000 + (Math.floor(step / 2) % 1000);
      const phase = step % 4;
      const [kind, request] =
        phase === 0
          ? (["FLUSH", m.kernel.flush([region])] as const)
          : phase === 2
            ? (["MARK", m.kernel.mark([region])] as const)
            : (["CLEAR", m.kernel.clear([region])] as const);
      const t0 = performance.now();
      pending.push(
        m.replica.request(request).then((reply: Reply) => {
          if (reply.error !== 0) throw new Error(`${kind} failed: ${reply.error}`);
          samples[kind].push(performance.now() - t0);
        }),
      );
    }
    await Promise.all(pending);
    const elapsed = (performance.now() - start) / 1000;
    const all = [...samples.MARK, ...samples.FLUSH, ...samples.CLEAR];
    const p50 = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        50,
      );
    const p99 = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        99,
      );
    console.log(
      `PB4: 3 members over JetStream (nats-server ${nats.url}), offered ${RATE} req/s for ${SECONDS} s, achieved ${(total / elapsed).toFixed(0)} req/s, ${late} sent late (>5 ms)`,
    );
    console.log(summary("baseline JetStream pub→ack", base));
    console.log(summary("MARK (1 ordered op)", samples.MARK));
    console.log(summary("FLUSH+mark (op+write+io)", samples.FLUSH));
    console.log(summary("CLEAR (1 ordered op)", samples.CLEAR));
    console.log(summary("all", all));
    console.log(
      `ratio to baseline p50: MARK ${(p50(samples.MARK) / p50(base)).toFixed(2)}x, FLUSH ${(p50(samples.FLUSH) / p50(base)).toFixed(2)}x; ` +
        `target p50 <= 1 ms: MARK ${p50(samples.MARK) <= 1 ? "met" : "missed"}; p99 <= 5 ms: MARK ${p99(samples.MARK) <= 5 ? "met" : "missed"}, FLUSH ${p99(samples.FLUSH) <= 5 ? "met" : "missed"}`,
    );
  } finally {
    for (const m of members) await m.bus.close().catch(() => {});
    await nats.stop();
  }
}

await main();
