import { spawnSync } from "node:child_process";
import {
  AGENT_CLI,
  Agent,
  check,
  createMirror,
  fio,
  guestMain,
  identical,
  makeLoopLeg,
  Results,
  say,
  sh,
  step,
  WORK,
  waitInSync,
} from "./lib.ts";

// One host, two agents (issue 14): every kernel request reaches every member of netlink
// group 7 and the kernel takes the first reply, so two servers with different states
// would answer one mirror differently. Only one may serve the connector: a second agent
// with `--connector on` is refused (exit 3, one line naming the holder), one with
// `--connector auto` serves its socket only; the lock of a holder killed with SIGKILL is
// dropped by the kernel and the next agent serves. The mirror is written throughout, and
// the legs compared.

const agentArgs = (name: string, connector: "on" | "auto") => [
  "--socket",
  `${WORK}/${name}.sock`,
  "--data-dir",
  `${WORK}/${name}`,
  "--connector",
  connector,
];

function write(dev: string, label: string) {
  const r = fio({ device: dev, rw: "randwrite", bs: "4k", iodepth: 16, seconds: 6 });
  say(`${label}: fio ${r.ios} writes, errors ${r.errors}`);
  check(r.errors === 0 && r.exitCode === 0, `${label}: fio reported errors: ${JSON.stringify(r)}`);
  return r;
}

guestMain(async () => {
  const results = new Results();
  const leg0 = makeLoopLeg("leg0", 64, "random");
  const leg1 = makeLoopLeg("leg1", 64, "zero");

  step("agent A serves the connector; a mirror on it");
  const a = await Agent.start({
    label: "agentA",
    command: "clusterlog",
    args: agentArgs("a", "on"),
  });
  const dev = createMirror({
    name: "mir",
    uuid: "lab-two-agents",
    sizeSectors: 64 * 2048,
    regionSectors: 512,
    legs: [leg0.device, leg1.device],
  });
  await waitInSync("mir", 300_000);

  step("agent B with --connector on is refused");
  const refused = spawnSync("node", [AGENT_CLI, "clusterlog", ...agentArgs("b", "on")], {
    encoding: "utf8",
    timeout: 120_000,
  });
  const line = `${refused.stderr}${refused.stdout}`.trim().split("\n").at(-1) ?? "";
  say(`agent B exited ${refused.status}: ${line}`);
  results.set("refused", { status: refused.status, line });
  check(refused.status === 3, `agent B exited ${refused.status}, not 3`);
  check(
    line.includes("another connector server holds") && line.includes(`pid ${a.child.pid}`),
    `agent B's line does not name the holder (pid ${a.child.pid}): ${line}`,
  );

  step("agent C with --connector auto serves its socket only");
  const c = await Agent.start({
    label: "agentC",
    command: "clusterlog",
    args: agentArgs("c", "auto"),
    ready: /serving the local socket only/,
  });
  const cLine = c.lines.find((l) => /serving the local socket only/.test(l.msg ?? ""));
  results.set("socketOnly", cLine?.msg);
  check(/another connector server holds/.test(cLine?.msg ?? ""), `agent C: ${cLine?.msg}`);
  results.set("writesBesideC", write(dev, "beside C"));
  check(
    !c.lines.some((l) => /log resumed|netlink connector: serving/.test(l.msg ?? "")),
    "agent C served the kernel",
  );
  await waitInSync("mir", 120_000);
  const same = identical(leg0.device, leg1.device);
  check(same.same, `legs differ with two agents: ${same.detail}`);

  step("agent A killed with SIGKILL: its lock goes with it, agent B serves");
  a.kill("SIGKILL");
  await a.exited;
  const b = await Agent.start({
    label: "agentB",
    command: "clusterlog",
    args: agentArgs("b", "on"),
  });
  results.set("afterTakeover", write(dev, "agent B"));
  await waitInSync("mir", 300_000);
  const after = identical(leg0.device, leg1.device);
  check(after.same, `legs differ after the takeover: ${after.detail}`);

  sh("dmsetup", ["remove", "mir"]);
  await b.stop("SIGTERM");
  await c.stop("SIGTERM");
});
