// PB3 (docs PERF.md): bitmap work per request must not grow with the region count.
// Prints the per-request cost of GET_RESYNC_WORK, IS_REMOTE_RECOVERING and GET_SYNC_COUNT at
// 2 k, 2 M and 20 M regions, the 20M/2k ratio, and the bitmap words a whole resync visits
// against N/32. Run from the repo root: npx tsx packages/clusterlog/bench/run.ts
import {
  ClusterLog,
  DM_ULOG_CTR,
  DM_ULOG_GET_RESYNC_WORK,
  DM_ULOG_GET_SYNC_COUNT,
  DM_ULOG_IS_REMOTE_RECOVERING,
  DM_ULOG_RESUME,
  DM_ULOG_SET_REGION_SYNC,
  decodePair64,
  encodeAscii,
  encodeSetRegionSync,
  encodeU64,
  makeRequest,
} from "../src/index.ts";

const UUID = "LVM-bench";
const NODE = 1;
const SIZES = [2_000, 2_000_000, 20_000_000];
const SAMPLES = 50_000;
let seq = 1;

function send(log: ClusterLog, type: number, data?: Uint8Array) {
  const request = makeRequest({
    node: NODE,
    type,
    uuid: UUID,
    luid: 1n,
    seq: seq++,
    ...(data ? { data } : {}),
  });
  return log.apply({ kind: "request", node: NODE, request }).replies[0]!;
}

function newLog(regions: number): ClusterLog {
  // PB3 measures up to 20 M regions, past the default 2^24 limit (issue 15).
  const log = new ClusterLog({ maxRegions: 2 ** 31 });
  send(log, DM_ULOG_CTR, encodeAscii(`${regions * 1024} clustered-core 1024`));
  send(log, DM_ULOG_RESUME);
  return log;
}

/** Deterministic pseudo-random regions (xorshift), so every run asks the same questions. */
function* regionsOf(n: number): Generator<number> {
  let x = 2463534242;
  for (;;) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    yield (x >>> 0) % n;
  }
}

function timeEach(count: number, op: (i: number) => void): number {
  let total = 0n;
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    op(i);
    total += process.hrtime.bigint() - t0;
  }
  return Number(total) / count;
}

interface Row {
  regions: number;
  resyncWork: number;
  remoteRecovering: number;
  syncCount: number;
}

function measure(regions: number): Row {
  const log = newLog(regions);
  // Half-way through a resync: the first half in sync, so the cursor sits mid-bitmap.
  const group = log.state.groups.get(UUID)!;
  group.syncBits.fillRange(0, regions >>> 1, true);
  group.syncSearch = regions >>> 1;
  // Warm up the JIT on the same paths.
  for (let i = 0; i < 2000; i++) send(log, DM_ULOG_GET_SYNC_COUNT);

  const random = regionsOf(regions);
  const remoteRecovering = timeEach(SAMPLES, () => {
    send(log, DM_ULOG_IS_REMOTE_RECOVERING, encodeU64(random.next().value as number));
  });
  const syncCount = timeEach(SAMPLES, () => {
    send(log, DM_ULOG_GET_SYNC_COUNT);
  });
  // GET_RESYNC_WORK as the kernel drives it: ask, recover, report (only the ask is timed).
  // A small log runs out of work: re-arm it (untimed) so every size is sampled on the
  // same path, hand-out of a real region.
  let total = 0n;
  for (let i = 0; i < SAMPLES; i++) {
    const t0 = process.hrtime.bigint();
    const reply = send(log, DM_ULOG_GET_RESYNC_WORK);
    total += process.hrtime.bigint() - t0;
    const { first, second } = decodePair64(reply.payload);
    if (first === 1) {
      send(log, DM_ULOG_SET_REGION_SYNC, encodeSetRegionSync(second, true));
    } else {
      group.syncBits.fill(false);
      group.syncSearch = 0;
    }
  }
  return { regions, resyncWork: Number(total) / SAMPLES, remoteRecovering, syncCount };
}

/**
 * A whole resync: every out-of-sync region handed out once. `spacing` = 1 means all regions
 * start out of sync; larger spacings leave one region in `spacing` to recover, so the
 * cursor has to skip the in-sync words in between.
 */
function wholeResync(regions: number, spacing: number) {
  const log = newLog(regions);
  const group = log.state.groups.get(UUID)!;
  if (spacing > 1) {
    group.syncBits.fill(true);
    for (let r = 0; r < regions; r += spacing) group.syncBits.clear(r);
  }
  group.syncBits.wordsVisited = 0;
  let calls = 0;
  const t0 = process.hrtime.bigint();
  for (;;) {
    calls++;
    const { first, second } = decodePair64(send(log, DM_ULOG_GET_RESYNC_WORK).payload);
    if (first !== 1) break;
    send(log, DM_ULOG_SET_REGION_SYNC, encodeSetRegionSync(second, true));
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (group.syncBits.count !== regions) throw new Error("resync did not finish");
  return { regions, spacing, calls, wordsVisited: group.syncBits.wordsVisited, ms };
}

const fmt = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 0 });
const ns = (n: number) => `${n.toFixed(0)} ns`;

console.log(`PB3 bitmap work per request — node ${process.version}, ${SAMPLES} samples each\n`);
const rows = SIZES.map(measure);
console.log("regions      GET_RESYNC_WORK  IS_REMOTE_RECOVERING  GET_SYNC_COUNT");
for (const r of rows) {
  console.log(
    `${fmt(r.regions).padEnd(12)} ${ns(r.resyncWork).padStart(15)}  ${ns(r.remoteRecovering).padStart(20)}  ${ns(r.syncCount).padStart(14)}`,
  );
}
const small = rows[0]!;
const large = rows[rows.length - 1]!;
console.log(
  `ratio 20M/2k ${(large.resyncWork / small.resyncWork).toFixed(2).padStart(15)}  ${(large.remoteRecovering / small.remoteRecovering).toFixed(2).padStart(20)}  ${(large.syncCount / small.syncCount).toFixed(2).padStart(14)}   (target ≤ 1.2)`,
);

console.log(
  "\nwhole resync: bitmap words visited vs N/32 (plus one word per GET_RESYNC_WORK call)",
);
console.log(
  "regions      out-of-sync   calls         words visited  N/32          visited/(N/32+calls)  time",
);
for (const [regions, spacing] of [
  [2_000, 1],
  [2_000_000, 1],
  [2_000_000, 1000],
  [20_000_000, 1000],
] as const) {
  const r = wholeResync(regions, spacing);
  const n32 = Math.ceil(regions / 32);
  console.log(
    `${fmt(regions).padEnd(12)} ${(spacing === 1 ? "all" : `1 in ${spacing}`).padEnd(13)} ${fmt(r.calls).padEnd(13)} ${fmt(r.wordsVisited).padEnd(14)} ${fmt(n32).padEnd(13)} ${(r.wordsVisited / (n32 + r.calls)).toFixed(3).padEnd(21)} ${r.ms.toFixed(0)} ms`,
  );
}
