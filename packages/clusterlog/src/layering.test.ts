import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

// The core's layering, checked on its own source (issue 12): the modules stack without an
// import circle — a leaf model (log-state.ts, operations.ts) under the state, the request
// handlers and the snapshot above — and nothing in it reaches for I/O, clocks or timers,
// so the cluster stays testable by deterministic simulation (STYLE.md, "pure core").

const SRC = new URL(".", import.meta.url).pathname;
const modules = readdirSync(SRC).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"));

function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(join(SRC, file), "utf8"), true, true);
  return info.importedFiles.map((i) => i.fileName);
}

/** Strongly connected components of more than one module (Tarjan), each sorted. */
function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

describe("the core's layering", () => {
  it("has no import circle among its modules", () => {
    const graph = new Map(
      modules.map((m) => [
        m,
        importsOf(m)
          .filter((name) => name.startsWith("./"))
          .map((name) => name.slice(2)),
      ]),
    );
    expect(circles(graph)).toEqual([]);
  });

  it("finds a circle when there is one (the check can fail)", () => {
    const graph = new Map([
      ["a.ts", ["b.ts"]],
      ["b.ts", ["c.ts"]],
      ["c.ts", ["a.ts"]],
      ["d.ts", ["a.ts"]],
    ]);
    expect(circles(graph)).toEqual([["a.ts", "b.ts", "c.ts"]]);
  });

  it("imports no Node module and reads no clock or timer", () => {
    const offenders: string[] = [];
    for (const m of modules) {
      for (const name of importsOf(m)) {
        if (!name.startsWith("./")) offenders.push(`${m} imports ${name}`);
      }
      const text = readFileSync(join(SRC, m), "utf8");
      for (const call of [
        "Date.now(",
        "new Date(",
        "performance.now(",
        "setTimeout(",
        "setInterval(",
        "setImmediate(",
      ]) {
        if (text.includes(call)) offenders.push(`${m} calls ${call}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
