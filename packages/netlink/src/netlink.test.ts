import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import {
  CAP_SYS_ADMIN,
  hasCapability,
  loadNetlink,
  NETLINK_CONNECTOR,
  NetlinkError,
  NetlinkSocket,
} from "./index.ts";

// Real AF_NETLINK sockets on this machine (root, Linux, the connector present — see
// /proc/net/connector). No kernel dm-log-userspace module here, so the "kernel" side is a
// second connector socket that multicasts to group 7 the way the kernel does
// (CLUSTERLOG-SPEC.md §1.1): root may send to a connector group from userspace.

const CN_IDX_DM = 7;
const loaded = loadNetlink();
const isRoot = process.getuid?.() === 0;
const hasConnector = (() => {
  try {
    return readFileSync("/proc/net/connector", "utf8").length > 0;
  } catch {
    return false;
  }
})();
const real = loaded.ok && isRoot && hasConnector;

const open: NetlinkSocket[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

function socket(groups: number[] = []): NetlinkSocket {
  const s = NetlinkSocket.open({ protocol: NETLINK_CONNECTOR, groups });
  open.push(s);
  return s;
}

function nextDatagram(s: NetlinkSocket): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    s.start(
      (d) => {
        s.stop();
        resolve(d.bytes);
      },
      (e) => reject(e),
    );
  });
}

describe("the addon", () => {
  it("is built on this machine (npm install runs the package's install script)", () => {
    expect(loaded.ok ? "loaded" : loaded.reason).toBe("loaded");
  });
});

describe.runIf(real)("NETLINK_CONNECTOR sockets, for real", () => {
  it("opens, binds to a kernel-assigned port id and joins group 7 (CN_IDX_DM)", () => {
    const s = socket([CN_IDX_DM]);
    expect(s.fd).toBeGreaterThan(2);
    expect(s.portId).toBeGreaterThan(0);
    // The kernel's own record of the membership, not our bookkeeping.
    expect(s.memberships()).toEqual([CN_IDX_DM]);
    s.leave(CN_IDX_DM);
    expect(s.memberships()).toEqual([]);
  });

  it("receives a datagram multicast to group 7 and answers by unicast to the sender's port", async () => {
    const server = socket([CN_IDX_DM]);
    const kernel = socket();
    const request = new Uint8Array(36 + 160).map((_, i) => i & 0xff);
    new DataView(request.buffer).setUint32(0, request.length, true);
    const received = nextDatagram(server);
    // nl_groups bitmask 1 << (7 − 1): group 7.
    expect(kernel.send(request, 0, 1 << (CN_IDX_DM - 1))).toBe(request.length);
    expect(await received).toEqual(request);

    const reply = new Uint8Array([36, 0, 0, 0, 3, 0, 0, 0, 9, 9, 9, 9]).slice();
    const back = nextDatagram(kernel);
    expect(server.send(reply, kernel.portId)).toBe(reply.length);
    expect(await back).toEqual(reply);
  });

  it("a socket not in group 7 receives nothing of it", () => {
    const bystander = socket();
    const kernel = socket();
    kernel.send(new Uint8Array(40), 0, 1 << (CN_IDX_DM - 1));
    expect(bystander.receive()).toBeNull();
  });

  it("sending to the kernel's port 0 succeeds (the connector drops ids it has no callback for)", () => {
    const s = socket([CN_IDX_DM]);
    const bytes = new Uint8Array(36);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 36, true);
    view.setUint16(4, 3, true);
    view.setUint32(16, CN_IDX_DM, true);
    view.setUint32(20, 1, true);
    expect(s.send(bytes)).toBe(36);
  });

  it("reports a datagram longer than the buffer as truncated", async () => {
    const small = NetlinkSocket.open({
      protocol: NETLINK_CONNECTOR,
      groups: [CN_IDX_DM],
      receiveBufferSize: 64,
    });
    open.push(small);
    const kernel = socket();
    kernel.send(new Uint8Array(200), small.portId);
    const got = await new Promise<{ truncated: boolean; length: number }>((resolve) =>
      small.start(
        (d) => resolve({ truncated: d.truncated, length: d.bytes.length }),
        () => {},
      ),
    );
    small.stop();
    expect(got).toEqual({ truncated: true, length: 64 });
  });

  it("an unprivileged process: may join group 7 on Linux ≥ 6.6, has no CAP_SYS_ADMIN", () => {
    if (!loaded.ok) return;
    // Linux 6.6 (connector: NL_CFG_F_NONROOT_RECV) lets anyone join a connector group;
    // older kernels refuse with EPERM. Either way dm-log-userspace ignores replies from a
    // sender without CAP_SYS_ADMIN, which is why the agent checks that capability itself.
    const script = `
      const nl = require(${JSON.stringify(loaded.path)});
      const fd = nl.open(11, 0);
      let joined;
      try { nl.join(fd, 7); joined = "joined"; } catch (e) { joined = e.code; }
      const status = require("fs").readFileSync("/proc/self/status", "utf8");
      console.log(joined + " " + /CapEff:\\s*([0-9a-f]+)/.exec(status)[1]);
    `;
    const r = spawnSync(process.execPath, ["-e", script], { uid: 65534, gid: 65534 });
    const [joined, capEff] = r.stdout.toString().trim().split(" ");
    const release = /^(\d+)\.(\d+)/.exec(readFileSync("/proc/sys/kernel/osrelease", "utf8"))!;
    const modern = Number(release[1]) * 100 + Number(release[2]) >= 606;
    expect(joined).toBe(modern ? "joined" : "E1");
    expect(BigInt(`0x${capEff}`)).toBe(0n);
    expect(hasCapability(CAP_SYS_ADMIN)).toBe(true); // this test process runs as root
  });

  it("throws NetlinkError with the errno for a bad protocol", () => {
    expect(() => NetlinkSocket.open({ protocol: 9999 })).toThrow(NetlinkError);
  });

  it("close is idempotent and send after close is -EBADF", () => {
    const s = socket([CN_IDX_DM]);
    s.close();
    s.close();
    expect(s.send(new Uint8Array(4))).toBe(-9);
  });
});
