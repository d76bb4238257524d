// How long `npm start` lives (issue 14): as long as the npm process that started it. npm
// does not pass a SIGTERM on to its script: killing `npm start` left tsx, this script,
// Postgres, the agent and the demo running, reparented to init, for as long as the machine
// ran. Nothing reaches us then (no signal; our own parent, tsx, is still alive), so the
// chain of ancestors up to that npm is watched instead (Linux /proc; no prctl from Node).

import { readFileSync } from "node:fs";

interface Ancestor {
  readonly pid: number;
  /** /proc/<pid>/stat starttime: a reused pid is not the process we watched. */
  readonly startTime: string;
  readonly command: string;
}

function stat(pid: number): { ppid: number; startTime: string } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state ppid … starttime is field 22 of the whole line.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(fields[1]), startTime: fields[19] ?? "" };
  } catch {
    return null;
  }
}

function command(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return "";
  }
}

const NPM = /(^|[\s/])(npm|npx)(\s|$)|npm-cli\.js|npx-cli\.js/;

/**
 * The processes this one must not outlive: its ancestors up to and including the nearest
 * npm/npx (`npm start`'s own process); without one, its parent only (run by hand under
 * tsx: a shell above it may end, e.g. with nohup, without that meaning "stop").
 */
export function ancestorsToOutlive(pid = process.pid): Ancestor[] {
  const chain: Ancestor[] = [];
  let at = stat(pid)?.ppid ?? 0;
  while (at > 1 && chain.length < 16) {
    const s = stat(at);
    if (!s) break;
    const cmd = command(at);
    chain.push({ pid: at, startTime: s.startTime, command: cmd });
    if (NPM.test(cmd)) return chain;
    at = s.ppid;
  }
  return chain.slice(0, 1);
}

/**
 * Calls `onGone` once, with a line naming it, when any of `ancestorsToOutlive()` has
 * exited (polled every `intervalMs`). Returns a function that stops watching.
 */
export function whenAncestorsGone(
  onGone: (why: string) => void,
  intervalMs = 1000,
  ancestors = ancestorsToOutlive(),
): () => void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    const gone = ancestors.find((a) => stat(a.pid)?.startTime !== a.startTime);
    if (gone || process.ppid !== parent) {
      clearInterval(timer);
      onGone(
        gone
          ? `${gone.command.split(" ").slice(0, 2).join(" ") || "parent"} (pid ${gone.pid}) is gone`
          : `parent (pid ${parent}) is gone`,
      );
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
