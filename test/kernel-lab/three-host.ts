import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { NatsServer } from "@mirrorplane/simulator/nats-server";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { type Lab, prepareLab, repoRoot, Vm, type VmExit } from "./lab.ts";

// Three hosts on the real kernel (guest/three-host.ts has the phases): three VMs, each its
// own Debian kernel, dm-raid1 and agent, share the two leg files as virtio disks
// (share-rw, cache=none) and one nats-server with JetStream on this machine's 127.0.0.1,
// carried into each guest over its virtio-serial mux (no guest networking). This side is
// the coordinator: it answers each phase's barrier once every expected host has asked,
// compares the leg files byte for byte where a phase calls for it, kills host 3's QEMU
// under write load (a whole-host crash) and boots it again to rejoin.

export interface ThreeHostReport {
  readonly cluster: string;
  readonly exits: Record<string, VmExit>;
  /** Per phase: seconds from the coordinator's start to the barrier's answer. */
  readonly phases: Record<string, number>;
  /** What each leg comparison found (phase → detail). */
  readonly comparisons: Record<string, string>;
  /** Seconds from the kill of host 3 to a survivor declaring it failed. */
  readonly declaredAfterSeconds: number | null;
  readonly failure: string | null;
  readonly vms: Record<string, string>;
}

interface Arrival {
  readonly node: number;
  readonly msg: Msg;
  readonly extra: Record<string, unknown>;
}

const SIZE_MIB = 64;

/**
 * Byte-for-byte comparison of the two leg files, read with O_DIRECT (QEMU writes them with
 * cache=none: a buffered read could return what an earlier read left in the page cache).
 */
export function legsIdentical(a: string, b: string): { same: boolean; detail: string } {
  const r = spawnSync(
    "bash",
    [
      "-c",
      'cmp <(dd if="$1" iflag=direct bs=1M status=none) <(dd if="$2" iflag=direct bs=1M status=none)',
      "cmp-legs",
      a,
      b,
    ],
    { encoding: "utf8" },
  );
  return { same: r.status === 0, detail: (r.stdout + r.stderr).trim() || "identical" };
}

export async function runThreeHosts(
  options: { loadSeconds?: number; killAfterMs?: number } = {},
): Promise<ThreeHostReport> {
  const lab: Lab = await prepareLab();
  const cluster = `lab3-${process.pid}-${Date.now().toString(36)}`;
  const dir = join(repoRoot, ".mirrorplane", "kernel-lab", "three-host", cluster);
  mkdirSync(dir, { recursive: true });
  const leg0 = join(dir, "leg0.img");
  const leg1 = join(dir, "leg1.img");
  // Different contents before the initial sync: "legs identical" is then a real check.
  spawnSync("dd", ["if=/dev/urandom", `of=${leg0}`, "bs=1M", `count=${SIZE_MIB}`, "status=none"]);
  spawnSync("dd", ["if=/dev/zero", `of=${leg1}`, "bs=1M", `count=${SIZE_MIB}`, "status=none"]);

  // Each member signs what it publishes (issue 15): a key pair per node, the public halves
  // in one directory every member trusts. The host's paths are the guests' too (9p root).
  const keys = join(dir, "keys");
  const trusted = join(keys, "trusted");
  mkdirSync(trusted, { recursive: true });
  for (const node of [1, 2, 3]) {
    const own = join(keys, String(node));
    const r = spawnSync(
      "node",
      [
        join(repoRoot, "packages/agent/dist/cli.mjs"),
        "keygen",
        "--node-id",
        String(node),
        "--out",
        own,
      ],
      { encoding: "utf8" },
    );
    if (r.status !== 0) throw new Error(`keygen for node ${node}: ${r.stderr}`);
    copyFileSync(join(own, `${node}.pub`), join(trusted, `${node}.pub`));
  }
  const agentArgs = (node: number) =>
    `--member-key ${join(keys, String(node), `${node}.key`)} --member-keys ${trusted}`;

  const nats = await NatsServer.start();
  const nc: NatsConnection = await connect({ servers: nats.url, name: "lab-coordinator" });
  const started = Date.now();
  const phases: Record<string, number> = {};
  const comparisons: Record<string, string> = {};
  const exits: Record<string, VmExit> = {};
  const vms = new Map<string, Vm>();
  let failure: string | null = null;
  let killedAt = 0;
  let declaredAfterSeconds: number | null = null;

  const boot = (name: string, node: number, rejoin: boolean) => {
    const vm = new Vm(lab, {
      name,
      smp: 1,
      memoryMiB: 1536,
      disks: [
        { file: leg0, serial: "leg0" },
        { file: leg1, serial: "leg1" },
      ],
      forward: new Map([[4222, nats.port]]),
      env: { LAB_AGENT_ARGS: agentArgs(node) },
      timeoutMs: 25 * 60_000,
      script: `guest three-host --node ${node} --cluster ${cluster} --load-seconds ${options.loadSeconds ?? 40}${rejoin ? " --rejoin" : ""}`,
    });
    vms.set(name, vm);
    vm.exited.then((exit) => {
      exits[name] = exit;
      const killed = name === "host3" && killedAt > 0;
      if (killed || exit.status === 0) return;
      failure ??= `${name} exited ${exit.status ?? "without a status"}${exit.timedOut ? " (timed out)" : ""}; console: ${vm.where}/console.log`;
      for (const other of vms.values()) other.kill("SIGKILL");
    });
    return vm;
  };

  const compare = (phase: string, expectSame: boolean): string => {
    const r = legsIdentical(leg0, leg1);
    comparisons[phase] = r.detail;
    if (r.same !== expectSame) {
      throw new Error(
        `${phase}: the legs ${expectSame ? "differ" : "are identical"} (${r.detail}); expected ${expectSame ? "identical" : "different"}`,
      );
    }
    return expectSame ? "legs identical" : "legs differ";
  };

  // Phase → how many hosts take part, what to do before answering, and after.
  const plan: Record<
    string,
    {
      hosts: number;
      before?: (arrivals: Arrival[]) => Promise<string> | string;
      after?: () => void;
    }
  > = {
    agents: { hosts: 3 },
    created: { hosts: 3, before: () => compare("before the initial sync", false) },
    synced: { hosts: 3, before: () => compare("after the initial sync", true) },
    written: { hosts: 3, before: () => compare("after each host wrote its third", true) },
    loaded: {
      hosts: 3,
      after: () => {
        setTimeout(() => {
          killedAt = Date.now();
          console.log("[coordinator] killing host3's QEMU (SIGKILL) under write load");
          vms.get("host3")?.kill("SIGKILL");
        }, options.killAfterMs ?? 5000);
      },
    },
    declared: {
      hosts: 2,
      before: async () => {
        const line = await Promise.race(
          ["host1", "host2"].map((n) =>
            vms.get(n)!.waitForLine(/declaring member failed/, 5 * 60_000),
          ),
        );
        declaredAfterSeconds = (Date.now() - killedAt) / 1000;
        return `declared after ${declaredAfterSeconds.toFixed(1)} s: ${line.replace(/^.*\] /, "")}`;
      },
    },
    survived: {
      hosts: 2,
      before: (arrivals) => {
        const detail = compare("after host 3 crashed and the survivors resynced", true);
        const inSync = arrivals.map((a) => `host${a.node} saw ${String(a.extra.inSync)} in sync`);
        return `${detail}; ${inSync.join(", ")}`;
      },
      after: () => {
        console.log("[coordinator] booting host 3 again (rejoin)");
        boot("host3-rejoin", 3, true);
      },
    },
    rejoined: { hosts: 3 },
    done: { hosts: 3, before: () => compare("after the rejoin and more writes", true) },
  };

  const arrived = new Map<string, Arrival[]>();
  const subscription = nc.subscribe(`lab.${cluster}.barrier`, {
    callback: (error, msg) => {
      if (error) return;
      const { phase, node, ...extra } = msg.json<{ phase: string; node: number }>();
      const step = plan[phase];
      if (!step) {
        msg.respond(JSON.stringify({ ok: false, detail: `unknown phase ${phase}` }));
        return;
      }
      const list = [...(arrived.get(phase) ?? []), { node, msg, extra }];
      arrived.set(phase, list);
      console.log(`[coordinator] ${phase}: host ${node} (${list.length}/${step.hosts})`);
      if (list.length < step.hosts) return;
      void (async () => {
        let reply: { ok: boolean; detail?: string };
        try {
          reply = { ok: true, detail: (await step.before?.(list)) ?? undefined };
        } catch (e) {
          failure ??= (e as Error).message;
          reply = { ok: false, detail: (e as Error).message };
        }
        phases[phase] = (Date.now() - started) / 1000;
        console.log(
          `[coordinator] ${phase}: ${reply.ok ? "passed" : "FAILED"} ${reply.detail ?? ""}`,
        );
        for (const a of list) a.msg.respond(JSON.stringify(reply));
        if (reply.ok) step.after?.();
      })();
    },
  });

  try {
    for (const node of [1, 2, 3]) boot(`host${node}`, node, false);
    // Hosts 1 and 2 wait at the "rejoined" barrier for the rebooted host 3, so once both
    // have ended the rejoin VM exists (unless something failed, which stops every VM).
    await Promise.all(["host1", "host2", "host3"].map((n) => vms.get(n)!.exited));
    const rejoin = vms.get("host3-rejoin");
    if (rejoin) await rejoin.exited;
  } finally {
    subscription.unsubscribe();
    await nc.close();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    cluster,
    exits,
    phases,
    comparisons,
    declaredAfterSeconds,
    failure,
    vms: Object.fromEntries([...vms].map(([n, vm]) => [n, vm.where])),
  };
}
