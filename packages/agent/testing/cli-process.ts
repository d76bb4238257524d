import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";

// Test support: `mirrorplane-agent clusterlog` (or another command: `run`) in its own
// process through the bin script (tsx), with its JSON log lines collected and awaitable.

export const clusterlogBin = resolve(import.meta.dirname, "../bin/mirrorplane-agent.js");

export interface CliProcess {
  readonly child: ChildProcess;
  readonly lines: string[];
  /** What it wrote on stderr (a refused start's one line). */
  readonly stderr: () => string;
  /** The first log line matching `re` (already seen or still to come). */
  line(re: RegExp): Promise<string>;
}

export function startCli(
  args: string[],
  options: { readonly command?: string; readonly env?: NodeJS.ProcessEnv } = {},
): CliProcess {
  const child = spawn(process.execPath, [clusterlogBin, options.command ?? "clusterlog", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.env ? { env: options.env } : {}),
  });
  const lines: string[] = [];
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    if (stderr.length > 100_000) stderr = stderr.slice(-50_000);
  });
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let partial = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    partial += chunk.toString();
    const parts = partial.split("\n");
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of [...waiters]) {
        if (w.re.test(l)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(l);
        }
      }
    }
  });
  const line = (re: RegExp) =>
    new Promise<string>((resolveLine, reject) => {
      const found = lines.find((l) => re.test(l));
      if (found) return resolveLine(found);
      waiters.push({ re, resolve: resolveLine });
      child.once("exit", (code) =>
        reject(new Error(`exited ${code} before ${re}: ${lines.join("\n")}`)),
      );
    });
  return { child, lines, stderr: () => stderr, line };
}
