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
  /**
   * SIGTERM, then the exit code once it has exited (SIGKILL after `killAfterMs`, then
   * null), so no test leaves a process behind it.
   */
  stop(killAfterMs?: number): Promise<number | null>;
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
  const stop = (killAfterMs = 10_000) =>
    new Promise<number | null>((resolveStop) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        return resolveStop(child.exitCode);
      }
      const timer = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      child.once("exit", (code) => {
        clearTimeout(timer);
        resolveStop(code);
      });
      child.kill("SIGTERM");
    });
  return { child, lines, stderr: () => stderr, line, stop };
}
