import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runVm } from "./lab.ts";

// `npm run lab -- <guest program> [args…]`: boots one lab VM (docs/KERNEL-LAB.md) and runs
// test/kernel-lab/guest/<program>.ts inside it, streaming the console; `--script '<bash>'`
// (or `--script-file <file>`) runs a shell script instead. Exits with the guest's status.
// The lab's own options come first (each with its value); everything from the program
// name on is the guest's.
const argv = process.argv.slice(2);
const own = new Set(["--script", "--script-file", "--smp", "--memory-mib"]);
let first = 0;
while (first < argv.length && own.has(argv[first]!)) first += 2;
const { values } = parseArgs({
  args: argv.slice(0, first),
  options: {
    script: { type: "string" },
    "script-file": { type: "string" },
    smp: { type: "string", default: "2" },
    "memory-mib": { type: "string", default: "3072" },
  },
});
if (values["script-file"]) values.script = readFileSync(values["script-file"], "utf8");
const [program, ...args] = argv.slice(first);
const script =
  typeof values.script === "string"
    ? values.script
    : program
      ? `guest ${[program, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ")}`
      : null;
if (!script) {
  console.error("usage: npm run lab -- <guest program> [args…] | --script '<bash>'");
  process.exit(2);
}
const { vm, exit } = await runVm({
  name: "lab",
  script,
  smp: Number(values.smp),
  memoryMiB: Number(values["memory-mib"]),
});
console.log(
  `[lab] ${exit.status === 0 ? "passed" : "FAILED"}: status ${exit.status ?? "none"} in ${exit.seconds.toFixed(1)} s (console and results in ${vm.where})`,
);
process.exit(exit.status ?? 1);
