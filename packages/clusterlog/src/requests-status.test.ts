import { describe, expect, it } from "vitest";
import { A, B, Harness, L2 } from "./test-support.ts";

describe("status requests (spec §2.15, §2.16)", () => {
  it("scenario 18: status strings as the kernel receives them (no NUL counted)", () => {
    const h = new Harness();
    h.up(A, "4096 clustered-core 1024");
    expect(h.statusInfo(A)).toBe("1 clustered-core");
    const table = h.send(A, 16);
    expect(table.payload.length).toBe("clustered-core 1024  ".length);
    expect(h.statusTable(A)).toBe("clustered-core 1024  ");
    h.ctr(A, "2097152 clustered-disk 7:0 1024 nosync block_on_error", { luid: L2 });
    expect(h.statusTable(A, L2)).toBe("clustered-disk 7:0 1024 nosync block_on_error ");
  });

  it("scenario 18 / P15: STATUS_INFO on a disk log reports the server's device health", () => {
    const h = new Harness();
    h.devices.set("8:0", h.device());
    h.up(A, "2097152 clustered-disk 7:0 1024");
    h.up(B, "2097152 clustered-disk 8:0 1024");
    expect(h.statusInfo(A)).toBe("3 clustered-disk 7:0 A");
    expect(h.statusInfo(B)).toBe("3 clustered-disk 7:0 A"); // the server (A) names its device
    h.device().failWrites = true;
    h.mark(B, [0]);
    h.setRegionSync(B, 5, true);
    h.clear(B, [5]);
    expect(h.flush(B).error).toBe(-5);
    expect(h.statusInfo(B)).toBe("3 clustered-disk 7:0 D");
  });

  it("GET_REGION_SIZE works pending and official; unknown log -EINVAL", () => {
    const h = new Harness();
    expect(h.regionSize(A)).toBe(-22);
    h.ctr(A, "4096 clustered-core 512");
    expect(h.regionSize(A)).toBe(512);
    h.resume(A);
    expect(h.regionSize(A)).toBe(512);
  });
});
