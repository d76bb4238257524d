import { describe, expect, it } from "vitest";
import { encodeAscii } from "./codec.ts";
import { parseCtr } from "./ctr-args.ts";

const parse = (s: string, quirks = false) => parseCtr(encodeAscii(s), { cmirrordQuirks: quirks });

describe("CTR argument parsing (spec §2.1)", () => {
  it("parses a core log: size first, region count rounded up", () => {
    const r = parse("4097 clustered-core 1024 nosync");
    expect(r).toMatchObject({
      ok: true,
      value: {
        reCtrForm: false,
        config: {
          logType: "clustered-core",
          logDevice: null,
          regionSize: 1024,
          regionCount: 5,
          sync: "nosync",
          blockOnError: false,
        },
      },
    });
  });

  it("scenario 3 (parse): a 1 GiB disk log with 512 KiB regions has 2048 regions", () => {
    const r = parse("2097152 clustered-disk 7:0 1024");
    expect(r).toMatchObject({
      ok: true,
      value: { config: { logDevice: "7:0", regionCount: 2048 } },
    });
  });

  it("recognises the re-CTR form by its counted NUL and ignores it (P4, P6)", () => {
    const r = parseCtr(encodeAscii("4096 clustered-core 1024", true));
    expect(r).toMatchObject({ ok: true, value: { reCtrForm: true, config: { regionCount: 4 } } });
  });

  it("reads flags in any order", () => {
    expect(parse("8 clustered-disk 253:2 2 block_on_error sync")).toMatchObject({
      ok: true,
      value: { config: { sync: "sync", blockOnError: true } },
    });
  });

  it.each([
    ["", "empty"],
    ["4096", "no space"],
    ["12x clustered-core 1024", "non-numeric size"],
    ["0 clustered-core 1024", "zero size"],
    ["4096 foo-log 1024", "unknown type"],
    ["2097152 clustered-disk 7:0 0", "disk log, region size 0"],
    ["2097152 clustered-disk 7:0 1024 sync block_on_error x", "disk log with 5 args"],
    ["4096 clustered-core 1024 a b c", "core log with 4 args"],
    ["4096 clustered-core 1000", "non-power-of-two region size [REC]"],
    ["4096 clustered-core 010x", "octal-looking junk"],
    ["4096  clustered-core 1024", "double space"],
    ["4096 clustered-core 0", "core log region size 0 [REC] -EINVAL"],
  ])("scenario 4: %j (%s) → -EINVAL", (text) => {
    expect(parse(text)).toMatchObject({ ok: false, errno: -22 });
  });

  it("scenario 4: the cmirrord quirk answers -ENOENT for a core log with region size 0", () => {
    expect(parse("4096 clustered-core 0", true)).toMatchObject({ ok: false, errno: -2 });
  });

  it("parses decimal only ([REC] §2.1 step 5): 010 is ten, not eight", () => {
    expect(parse("80 clustered-core 16")).toMatchObject({ value: { config: { regionCount: 5 } } });
    expect(parse("010 clustered-core 2")).toMatchObject({ value: { config: { regionCount: 5 } } });
  });

  it("refuses a log device name that would not fit the 128-byte CTR reply (P3)", () => {
    expect(parse(`8 clustered-disk ${"d".repeat(128)} 2`)).toMatchObject({ ok: false, errno: -22 });
    expect(parse(`8 clustered-disk ${"d".repeat(127)} 2`).ok).toBe(true);
  });
});
