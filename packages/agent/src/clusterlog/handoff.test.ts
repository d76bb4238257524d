import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { handoffPaths, takeHandoff, writeHandoff } from "./handoff.ts";

describe("a clean restart's handover beside the connector lock", () => {
  let dir: string;
  let lock: string;
  const snapshot = { seq: 42, bytes: new Uint8Array([1, 2, 3, 4, 5]) };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "mirrorplane-handoff-"));
    lock = join(dir, "connector.lock");
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("is taken once, by the next server, with the exact state", async () => {
    await writeHandoff(lock, { nodeId: 1, snapshot, now: 1000 });
    const taken = await takeHandoff(lock, { nodeId: 1, now: 2000, maxAgeMs: 60_000 });
    expect(taken.ok).toBe(true);
    if (!taken.ok) return;
    expect(taken.handoff.snapshot.seq).toBe(42);
    expect([...taken.handoff.snapshot.bytes]).toEqual([1, 2, 3, 4, 5]);
    expect(taken.handoff.pid).toBe(process.pid);
    // Consumed: a later server (after this one crashed, say) must not start from it.
    const paths = handoffPaths(lock);
    expect(existsSync(paths.meta) || existsSync(paths.data)).toBe(false);
    expect(await takeHandoff(lock, { nodeId: 1, now: 2000, maxAgeMs: 60_000 })).toEqual({
      ok: false,
      reason: null,
    });
  });

  it("is refused, and still consumed, when it is another node's, too old, or damaged", async () => {
    await writeHandoff(lock, { nodeId: 2, snapshot, now: 1000 });
    const other = await takeHandoff(lock, { nodeId: 1, now: 2000, maxAgeMs: 60_000 });
    expect(other).toEqual({ ok: false, reason: "it is node 2's, this is node 1" });
    expect(existsSync(handoffPaths(lock).meta)).toBe(false);

    await writeHandoff(lock, { nodeId: 1, snapshot, now: 1000 });
    const old = await takeHandoff(lock, { nodeId: 1, now: 1000 + 120_000, maxAgeMs: 60_000 });
    expect(old).toEqual({ ok: false, reason: "it is 120 s old" });

    await writeHandoff(lock, { nodeId: 1, snapshot, now: 1000 });
    const data = handoffPaths(lock).data;
    const bytes = await readFile(data);
    bytes[0] = (bytes[0] ?? 0) ^ 0xff;
    await writeFile(data, bytes);
    const damaged = await takeHandoff(lock, { nodeId: 1, now: 2000, maxAgeMs: 60_000 });
    expect(damaged).toEqual({ ok: false, reason: "its snapshot does not match its digest" });
    expect(existsSync(data)).toBe(false);
  });

  it("without its snapshot is not used", async () => {
    await writeHandoff(lock, { nodeId: 1, snapshot, now: 1000 });
    await rm(handoffPaths(lock).data);
    expect(await takeHandoff(lock, { nodeId: 1, now: 2000, maxAgeMs: 60_000 })).toEqual({
      ok: false,
      reason: "its snapshot is missing",
    });
  });
});
