import { describe, expect, it } from "vitest";
import { formatBytes, shortDevice } from "./bytes";

describe("formatBytes", () => {
  it("prints binary units without trailing zeros", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(64 * 4096)).toBe("256 KiB");
    expect(formatBytes(1536 * 1024)).toBe("1.5 MiB");
    expect(formatBytes(4096 * 4096)).toBe("16 MiB");
    expect(formatBytes(2 ** 40 * 6)).toBe("6 TiB");
  });

  it("is a dash for what is unknown or impossible", () => {
    expect(formatBytes(null)).toBe("—");
    expect(formatBytes(undefined)).toBe("—");
    expect(formatBytes(-1)).toBe("—");
    expect(formatBytes(Number.NaN)).toBe("—");
  });
});

describe("shortDevice", () => {
  it("keeps device names and shortens paths to their file", () => {
    expect(shortDevice("dm-3")).toBe("dm-3");
    expect(shortDevice("/var/lib/mp/cluster/db-primary-leg0.img")).toBe("db-primary-leg0.img");
  });
});
