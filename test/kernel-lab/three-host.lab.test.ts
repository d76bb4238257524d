import { describe, expect, it } from "vitest";
import { runThreeHosts } from "./three-host.ts";

// Three hosts on the real kernel (three-host.ts, guest/three-host.ts): one mirror on two
// shared leg disks, three kernels and three agents ordering over one JetStream on this
// machine's loopback. Each phase's data check runs on the coordinator (leg files compared
// byte for byte) or in the guests (fio verify, 0 I/O errors); this checks they all passed.

describe("three hosts: one mirror, three kernels, three agents over JetStream", () => {
  it("sync, disjoint writes, a host crashed under load, survivors resync, the host rejoins; legs identical throughout", async () => {
    const report = await runThreeHosts();
    console.log(`[three-host] ${JSON.stringify(report, null, 2)}`);
    expect(report.failure, JSON.stringify(report.vms)).toBeNull();
    for (const name of ["host1", "host2", "host3-rejoin"]) {
      expect(report.exits[name]?.status, `${name}: ${report.vms[name]}`).toBe(0);
    }
    expect(Object.keys(report.phases)).toEqual([
      "agents",
      "created",
      "synced",
      "written",
      "loaded",
      "declared",
      "survived",
      "rejoined",
      "done",
    ]);
    expect(report.declaredAfterSeconds).not.toBeNull();
  });
});
