// temporary: per-request CPU of ClusterLogServer without sockets
import { pino } from "pino";
import { InProcessOrder } from "../src/clusterlog/in-process-bus.ts";
import { FileLogDevices } from "../src/clusterlog/log-devices.ts";
import { ClusterLogServer } from "../src/clusterlog/server.ts";
import { ascii, buildRequest, u64, withLength } from "../src/clusterlog/test-client.ts";
const UUID = "LVM-bench-0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghij";
const req = (type: number, seq: number, data?: Uint8Array) =>
  Buffer.from(withLength(buildRequest({ type, seq, uuid: UUID, luid: 7n, ...(data ? { data } : {}) })));
const server = new ClusterLogServer({
  bus: new InProcessOrder({ dedupWindow: Number(process.env.DW ?? 65536) }).bus(1),
  devices: new FileLogDevices({ overrides: new Map() }),
  log: pino({ level: "warn" }),
});
await server.start();
let replies = 0;
const session = server.openSession({ write: (b) => { replies += b.length; }, end() {} });
session.receive(req(1, 1, ascii(`${65536 * 1024} clustered-core 1024 nosync`)));
session.receive(req(5, 2));
await new Promise((r) => setImmediate(r));
const frames: Buffer[] = [];
let seq = 100;
for (let r = 0; r < 4096; r++) {
  frames.push(req(9, seq++, u64(r)), req(7, seq++, u64(r)), req(8, seq++, u64(r)), req(11, seq++, u64(r)));
}
// 64 frames per chunk, fresh chunk each time (like socket reads)
const chunks: Buffer[] = [];
for (let i = 0; i < frames.length; i += 64) chunks.push(Buffer.concat(frames.slice(i, i + 64)));
for (let round = 0; round < 8; round++) {
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (let k = 0; k < 6; k++) {
    for (const c of chunks) {
      session.receive(Buffer.from(c));
      n += 64;
      if ((n & 1023) === 0) await new Promise((r) => setImmediate(r));
    }
  }
  await new Promise((r) => setImmediate(r));
  const ns = Number(process.hrtime.bigint() - t0) / n;
  console.log(`round ${round}: ${ns.toFixed(0)} ns/request`);
}
process.exit(0);
