import { describe, expect, it } from "vitest";
import { encodeAscii } from "./codec.ts";
import { type LogConfig, parseCtr } from "./ctr-args.ts";
import { statusInfo, statusTable } from "./status.ts";

function config(args: string): LogConfig {
  const r = parseCtr(encodeAscii(args));
  if (!r.ok) throw new Error(r.message);
  return r.value.config;
}

describe("status strings (spec §2.15, §2.16, scenario 18)", () => {
  it("core: STATUS_INFO and the two-trailing-space STATUS_TABLE", () => {
    const core = config("4096 clustered-core 1024");
    expect(statusInfo(core, false)).toBe("1 clustered-core");
    expect(statusTable(core)).toBe("clustered-core 1024  ");
  });

  it("disk: nosync + block_on_error table; A/D health", () => {
    const disk = config("2097152 clustered-disk 7:0 1024 nosync block_on_error");
    expect(statusTable(disk)).toBe("clustered-disk 7:0 1024 nosync block_on_error ");
    expect(statusInfo(disk, false)).toBe("3 clustered-disk 7:0 A");
    expect(statusInfo(disk, true)).toBe("3 clustered-disk 7:0 D");
    expect(statusTable(config("2097152 clustered-disk 253:2 1024 sync"))).toBe(
      "clustered-disk 253:2 1024 sync  ",
    );
  });
});
