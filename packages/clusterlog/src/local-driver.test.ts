import { describe, expect, it } from "vitest";
import { ClusterLog } from "./cluster-log.ts";
import { encodeAscii } from "./codec.ts";
import { LocalDriver } from "./local-driver.ts";
import { MemoryBlockDevice } from "./memory-block-device.ts";
import { DM_ULOG_CTR, DM_ULOG_RESUME } from "./request-types.ts";

describe("LocalDriver", () => {
  it("performs I/O in-process and records every operation for replay", () => {
    const dev = new MemoryBlockDevice();
    const driver = new LocalDriver((_node, name) => (name === "7:0" ? dev : null));
    const base = { node: 1, uuid: "LVM-x", luid: 5n };
    driver.request({
      ...base,
      type: DM_ULOG_CTR,
      seq: 1,
      data: encodeAscii("2048 clustered-disk 7:0 1024"),
    });
    const resume = driver.request({ ...base, type: DM_ULOG_RESUME, seq: 2 });
    expect(resume?.error).toBe(0);
    expect(dev.writeCount).toBe(1);
    expect(driver.applied.map((op) => op.kind)).toEqual([
      "request",
      "request",
      "io-done",
      "io-done",
    ]);
    const replica = new ClusterLog();
    for (const op of driver.applied) replica.apply(op);
    expect(replica.snapshot()).toEqual(driver.log.snapshot());
  });

  it("an unresolvable log device fails the master resume with -EIO", () => {
    const driver = new LocalDriver();
    const base = { node: 1, uuid: "LVM-x", luid: 5n };
    driver.request({
      ...base,
      type: DM_ULOG_CTR,
      seq: 1,
      data: encodeAscii("2048 clustered-disk 9:9 1024"),
    });
    expect(driver.request({ ...base, type: DM_ULOG_RESUME, seq: 2 })?.error).toBe(-5);
    expect(driver.log.state.groups.get("LVM-x")?.logDevFailed).toBe(true);
  });
});
