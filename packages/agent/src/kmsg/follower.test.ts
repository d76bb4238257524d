import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { THostEvent } from "../events/event.ts";
import { type EventSink, KmsgFollower } from "./follower.ts";

const log = pino({ level: "silent" });

class MemorySink implements EventSink {
  events: THostEvent[] = [];
  emit(events: THostEvent[]) {
    this.events.push(...events);
  }
  async flush() {}
}

describe("kernel log follower on a recorded log", () => {
  let root: string;
  let dataDir: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "mirrorplane-kmsg-"));
    dataDir = join(root, "state");
    await mkdir(join(root, "dev"));
    await mkdir(join(root, "proc/sys/kernel/random"), { recursive: true });
    await writeFile(
      join(root, "proc/sys/kernel/random/boot_id"),
      "0b5e2c4e-1111-4c1a-9d7e-5f0e6d3a2b10\n",
    );
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  const follower = (sink: EventSink) =>
    new KmsgFollower({
      root,
      nodeId: "n1",
      cursorPath: join(dataDir, "kmsg-cursor.json"),
      sink,
      log,
      pollMs: 60_000,
      coalesceWindowMs: 1000,
    });

  const lines = (from: number, texts: string[]) =>
    texts.map((t, i) => `3,${from + i},${(from + i) * 1000},-;${t}\n`).join("");

  it("reads records, resumes after the last one after a restart, and reports nothing twice", async () => {
    await writeFile(
      join(root, "dev/kmsg"),
      lines(1, [
        "Memory failure: 0x1000: recovery action for dirty LRU page: Recovered",
        "Memory failure: 0x1001: recovery action for dirty LRU page: Recovered",
        "nvme nvme0: IO queues lost",
      ]),
    );
    const sink1 = new MemorySink();
    const f1 = follower(sink1);
    expect(await f1.start()).toBe(true);
    await f1.pollNow();
    await f1.stop();
    expect(sink1.events.map((e) => e.key).sort()).toEqual([
      "n1:0b5e2c4e-1111-4c1a-9d7e-5f0e6d3a2b10:kmsg:1",
      "n1:0b5e2c4e-1111-4c1a-9d7e-5f0e6d3a2b10:kmsg:3",
    ]);
    expect(JSON.parse(await readFile(join(dataDir, "kmsg-cursor.json"), "utf8"))).toEqual({
      bootId: "0b5e2c4e-1111-4c1a-9d7e-5f0e6d3a2b10",
      seq: 3,
    });

    await appendFile(join(root, "dev/kmsg"), lines(4, ["nvme nvme1: IO queues lost"]));
    const sink2 = new MemorySink();
    const f2 = follower(sink2);
    await f2.start();
    await f2.pollNow();
    await f2.stop();
    expect(sink2.events.map((e) => [e.kernelSeq, e.device])).toEqual([[4, "nvme1"]]);
  });

  it("starts over after a reboot (another boot id)", async () => {
    await writeFile(join(root, "dev/kmsg"), lines(1, ["nvme nvme0: IO queues lost"]));
    const f1 = follower(new MemorySink());
    await f1.start();
    await f1.pollNow();
    await f1.stop();
    await writeFile(
      join(root, "proc/sys/kernel/random/boot_id"),
      "99999999-2222-4c1a-9d7e-5f0e6d3a2b10\n",
    );
    const sink = new MemorySink();
    const f2 = follower(sink);
    await f2.start();
    await f2.pollNow();
    await f2.stop();
    expect(sink.events.map((e) => e.key)).toEqual([
      "n1:99999999-2222-4c1a-9d7e-5f0e6d3a2b10:kmsg:1",
    ]);
  });

  it("survives hostile input: binary, overlong, malformed and unterminated lines", async () => {
    const garbage = Buffer.concat([
      Buffer.from(lines(1, ["Memory failure: 0x10: recovery action for dirty LRU page: Failed"])),
      Buffer.from([0, 1, 2, 255, 254, 10, 0x1b, 0x5b, 0x32, 0x4a, 10]),
      Buffer.from(`3,2,2000,-;${"A".repeat(100_000)}\n`),
      Buffer.from("not a record at all\n 3,xx;\n;;;;\n"),
      Buffer.from(
        `3,3,3000,-;Memory failure: 0x${"f".repeat(5000)}: recovery action for x: Recovered\n`,
      ),
      Buffer.from(lines(4, ["nvme nvme0: Disabling device after reset failure: -19"])),
      Buffer.from("3,5,5000,-;nvme nvme0: IO queu"),
    ]);
    await writeFile(join(root, "dev/kmsg"), garbage);
    const sink = new MemorySink();
    const f = follower(sink);
    await f.start();
    await f.pollNow();
    await f.stop();
    const whats = sink.events.map((e) => e.data.what);
    expect(whats).toContain("action_result");
    expect(whats).toContain("nvme_removed");
    expect(f.malformedRecords).toBeGreaterThanOrEqual(3);
  });

  it("reads the recorded NVMe/block/dm-raid1 log of the edac-dimm-nvme fixture", async () => {
    const sink = new MemorySink();
    const f = new KmsgFollower({
      root: join(import.meta.dirname, "../../test/fixtures/edac-dimm-nvme"),
      nodeId: "n1",
      cursorPath: join(dataDir, "fixture-cursor.json"),
      sink,
      log,
      pollMs: 60_000,
      coalesceWindowMs: 1000,
    });
    expect(await f.start()).toBe(true);
    await f.pollNow();
    await f.stop();
    expect(sink.events.map((e) => [e.kernelSeq, e.device, e.data.what])).toEqual([
      [1022, "nvme1", "nvme_timeout"],
      [1023, "nvme1", "nvme_abort_status"],
      [1024, "nvme1", "nvme_timeout"],
      [1025, "nvme1", "nvme_controller_down"],
      [1026, "nvme1", "nvme_power_saving_hint"],
      [1027, "nvme1", "nvme_power_saving_hint"],
      [1028, "nvme1", "nvme_removed"],
      [1029, "nvme1n1", "io_error"],
      [1030, "259:1", "read_failed_retrying"],
      [1031, "259:1", "primary_failed_out_of_sync"],
      [1032, "sdb", "io_error"],
      [1033, "nvme0n1", "nvme_command_error"],
      [1034, "253:5", "log_device_failed"],
    ]);
  });

  it("reports the absence of a kernel log instead of failing", async () => {
    expect(await follower(new MemorySink()).start()).toBe(false);
  });
});
