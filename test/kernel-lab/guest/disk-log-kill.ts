import { spawn } from "node:child_process";
import {
  Bitmap,
  decodeLogHeader,
  LOG_OFFSET,
  MIRROR_MAGIC,
} from "../../../packages/clusterlog/src/index.ts";
import {
  Agent,
  check,
  createMirror,
  guestMain,
  identical,
  makeLoopLeg,
  mirrorStatus,
  Results,
  say,
  sh,
  sleep,
  step,
  WORK,
  waitFor,
  waitInSync,
} from "./lib.ts";

// One host, the real kernel, a `clustered-disk` mirror: the agent is killed (SIGKILL) while
// writes it has marked and flushed are still in flight, and the log device is read back —
// every region whose write the kernel issued after the agent answered its FLUSH must be
// dirty on disk (no lost mark, spec §4.7, P33). The writes are held in flight by a dm-delay
// target beneath the second leg. Then the agent comes back, the kernel re-constructs its log
// (-ESRCH, spec §1.5), the writes complete, and only what was marked is recovered.

const SIZE_MIB = 64;
const REGION_SECTORS = 512; // 256 KiB
const REGION_BYTES = REGION_SECTORS * 512;
const WRITTEN = [3, 17, 100, 200, 255];
const DELAY_MS = 6000;

/** The on-disk log (spec §5) read with O_DIRECT from the log device: the clean bits. */
function readDiskLog(device: string, regionCount: number): Bitmap {
  const bytes = LOG_OFFSET + Math.ceil(regionCount / 32) * 4;
  const sectors = Math.ceil(bytes / 512);
  const image = sh("sh", [
    "-c",
    `dd if=${device} iflag=direct bs=512 count=${sectors} status=none | od -An -v -tx1`,
  ]);
  const hex = image.replace(/\s+/g, "");
  const buffer = Uint8Array.from(hex.match(/../g)!.map((h) => Number.parseInt(h, 16)));
  const header = decodeLogHeader(buffer);
  check(header?.magic === MIRROR_MAGIC, `no log header on ${device}`);
  check(header.nrRegions === regionCount, `the log header says ${header.nrRegions} regions`);
  const clean = new Bitmap(regionCount);
  clean.readBytes(buffer, LOG_OFFSET);
  return clean;
}

guestMain(async () => {
  const results = new Results();
  const leg0 = makeLoopLeg("leg0", SIZE_MIB, "random");
  const leg1raw = makeLoopLeg("leg1", SIZE_MIB, "zero");
  const logDev = makeLoopLeg("log", 4, "zero");
  const sectors = SIZE_MIB * 2048;
  // The second leg through a dm target whose table can become a delay later.
  sh("dmsetup", ["create", "leg1", "--table", `0 ${sectors} linear ${leg1raw.device} 0`]);
  const leg1dev = `/dev/dm-${sh("dmsetup", ["info", "-c", "--noheadings", "-o", "minor", "leg1"]).trim()}`;

  const start = () =>
    Agent.start({
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
  let agent = await start();
  createMirror({
    name: "mir",
    uuid: "lab-disk-kill",
    sizeSectors: sectors,
    regionSectors: REGION_SECTORS,
    legs: [leg0.device, leg1dev],
    logDevice: logDev.number,
  });
  await waitInSync("mir", 300_000);
  const regionCount = mirrorStatus("mir").regionCount;
  const minor = sh("dmsetup", ["info", "-c", "--noheadings", "-o", "minor", "mir"]).trim();
  const dev = `/dev/dm-${minor}`;
  check(
    readDiskLog(logDev.device, regionCount).count === regionCount,
    "in sync, yet not every region is clean on disk",
  );

  step(`writes to regions ${WRITTEN.join(", ")} held in flight by a ${DELAY_MS} ms delay on leg 1`);
  sh("dmsetup", ["suspend", "leg1"]);
  sh("dmsetup", [
    "load",
    "leg1",
    "--table",
    `0 ${sectors} delay ${leg1raw.device} 0 0 ${leg1raw.device} 0 ${DELAY_MS}`,
  ]);
  sh("dmsetup", ["resume", "leg1"]);
  const writers = WRITTEN.map(
    (region) =>
      new Promise<number | null>((resolve) => {
        const dd = spawn("dd", [
          "if=/dev/urandom",
          `of=${dev}`,
          "bs=4096",
          "count=1",
          `seek=${(region * REGION_BYTES) / 4096 + 1}`,
          "oflag=direct",
          "conv=notrunc",
          "status=none",
        ]);
        dd.on("exit", (code) => resolve(code));
      }),
  );
  // The kernel marks, flushes (the agent writes the disk log and fdatasyncs before it
  // answers), then issues the writes: within the delay they are all in flight.
  await sleep(2500);
  const marked = await waitFor(
    "the marks to reach the disk log",
    () => {
      const clean = readDiskLog(logDev.device, regionCount);
      return WRITTEN.every((r) => !clean.test(r)) ? clean : undefined;
    },
    3000,
    100,
  );
  step("kill -9 of the agent right after its FLUSH answers, writes still in flight");
  agent.kill("SIGKILL");
  await agent.exited;
  const afterKill = readDiskLog(logDev.device, regionCount);
  const lost = WRITTEN.filter((r) => afterKill.test(r));
  results.set("dirtyOnDiskAfterKill", regionCount - afterKill.count);
  results.set("lostMarks", lost);
  say(
    `after the kill: ${regionCount - afterKill.count} dirty regions on disk; lost marks: ${lost.length}`,
  );
  check(lost.length === 0, `marks lost from the disk log: regions ${lost.join(", ")}`);
  check(regionCount - marked.count >= WRITTEN.length, "fewer dirty regions than writes in flight");

  step("the agent comes back; the kernel re-constructs its log and recovers the marked regions");
  await sleep(1000);
  agent = await start();
  const codes = await Promise.all(writers);
  results.set("writerExitCodes", codes);
  check(
    codes.every((c) => c === 0),
    `a writer saw an I/O error: ${codes.join(", ")}`,
  );
  sh("dmsetup", ["suspend", "leg1"]);
  sh("dmsetup", ["load", "leg1", "--table", `0 ${sectors} linear ${leg1raw.device} 0`]);
  sh("dmsetup", ["resume", "leg1"]);
  // What the log starts from after the crash (the agent logs every resume): a disk log
  // needs only what was dirty on disk; cmirrord and a core log resync the whole mirror.
  const resumed = await agent.waitForLog(/^log resumed$/, 120_000);
  results.set("resumedInSync", resumed.inSync);
  results.set("resyncedRegions", regionCount - Number(resumed.inSync));
  say(`resumed after the crash with ${resumed.inSync} of ${regionCount} regions in sync`);
  const final = await waitFor(
    "the kernel to resync",
    () => {
      const s = mirrorStatus("mir");
      return s.inSync === s.regionCount ? s : undefined;
    },
    300_000,
    100,
  );
  check(
    final.legs.every((l) => l.health === "A"),
    `legs: ${JSON.stringify(final.legs)}`,
  );
  sh("sync", []);
  const same = identical(leg0.device, leg1raw.device);
  check(same.same, `legs differ after the recovery: ${same.detail}`);
  sh("dmsetup", ["remove", "mir"]);
  sh("dmsetup", ["remove", "leg1"]);
  await agent.stop("SIGTERM");
});
