import { createHash } from "node:crypto";
import type { TResyncProgress } from "@mirrorplane/contracts";
import type { Db } from "@mirrorplane/db";
import type { AgentDirectory } from "../agents";
import { collect, type TCollectedMirror } from "../domain/fleet";
import { observeTrend } from "../domain/sync-observer";
import { freshness } from "../freshness";
import {
  LiveLog,
  type LiveMessage,
  type LiveMirror,
  type LiveSnapshot,
  type LiveLog as TLiveLog,
} from "./live-state";

export interface LiveHubOptions {
  db: Db;
  /** The agents the mirrors' state is collected from; without it the stream carries none. */
  agents?: AgentDirectory;
  /** How often Postgres is read (nodes, latest event and audit ids). */
  intervalMs?: number;
  /** How often the agents are asked for their mirrors' sync state. */
  mirrorsIntervalMs?: number;
  now?: () => Date;
}

/** What the stream does not carry about a mirror, as one short digest (see LiveMirror.facts). */
export function mirrorFacts(m: TCollectedMirror): string {
  const facts = JSON.stringify([
    m.holders.map((h) => h.nodeId),
    m.name,
    m.logType,
    m.regionSectors,
    m.sizeBytes,
    m.logDevice,
    m.views,
  ]);
  return createHash("sha256").update(facts).digest("base64url").slice(0, 16);
}

/**
 * One poller per web process, shared by every open tab, running only while someone
 * listens. Once a second it reads the little the stream carries from Postgres (PERF.md
 * PB7: ≤ 10 UI updates a second per tab); every `mirrorsIntervalMs` it asks the agents for
 * their mirrors' sync state (fleet.ts `collect`, plus the latest run of each mirror that is
 * out of sync, resyncing or just finished one). Each read is diffed against the current
 * snapshot and only the changes are fanned out. The two reads run independently, so a slow
 * agent never holds back node, event or audit changes.
 */
export class LiveHub {
  readonly log: TLiveLog = new LiveLog();
  readonly #db: Db;
  readonly #agents: AgentDirectory | undefined;
  readonly #intervalMs: number;
  readonly #mirrorsIntervalMs: number;
  readonly #now: () => Date;
  #listeners = new Set<(m: LiveMessage) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #readingDb: Promise<void> | null = null;
  #readingMirrors: Promise<void> | null = null;
  #mirrorsReadAt = Number.NEGATIVE_INFINITY;
  /** The newest resync event the mirrors' rounds have taken into account. */
  #runEventsSeen: bigint | null = null;
  /** The snapshot was last read while nobody listened (or never): older than a tick. */
  #stale = true;

  constructor(options: LiveHubOptions) {
    this.#db = options.db;
    this.#agents = options.agents;
    this.#intervalMs = options.intervalMs ?? 1_000;
    this.#mirrorsIntervalMs = options.mirrorsIntervalMs ?? 2_000;
    this.#now = options.now ?? (() => new Date());
  }

  /** Nodes, latest event and audit ids, from Postgres. */
  async read(): Promise<Pick<LiveSnapshot, "nodes" | "latestEventId" | "latestAuditId">> {
    const [nodes, event, auditRow] = await Promise.all([
      this.#db.node.findMany({
        select: { id: true, hostname: true, lastSeenAt: true, sampleIntervalMs: true },
      }),
      this.#db.event.findFirst({ orderBy: { id: "desc" }, select: { id: true } }),
      this.#db.auditAction.findFirst({ orderBy: { id: "desc" }, select: { id: true } }),
    ]);
    const now = this.#now();
    return {
      nodes: Object.fromEntries(
        nodes.map((n) => [
          n.id,
          {
            hostname: n.hostname,
            freshness: freshness(n.lastSeenAt, n.sampleIntervalMs, now),
            lastSeenAt: n.lastSeenAt.getTime(),
          },
        ]),
      ),
      latestEventId: event ? event.id.toString() : null,
      latestAuditId: auditRow ? auditRow.id.toString() : null,
    };
  }

  /** The mirrors' sync state from the agents (null without an agent directory). */
  async readMirrors(): Promise<Pick<LiveSnapshot, "mirrors" | "unreachable"> | null> {
    if (!this.#agents) return null;
    const at = this.#now();
    const { mirrors, unreachable } = await collect({
      db: this.#db,
      agents: this.#agents,
      now: () => at,
    });
    const previous = this.log.snapshot.mirrors;
    const touched = await this.#mirrorsWithNewRunEvents();
    const entries = await Promise.all(
      [...mirrors.values()].map(async (m): Promise<[string, LiveMirror]> => {
        const before = previous[m.uuid];
        return [
          m.uuid,
          {
            sync: {
              regionCount: m.regionCount,
              inSync: m.inSync,
              resyncId: m.resyncId,
              // The mirrors list's and the overview's trend store: the hub is one more look.
              trend: observeTrend(m.uuid, m.inSync, m.regionCount, at.getTime()),
            },
            resync: await this.#latestRun(m, before, touched),
            facts: mirrorFacts(m),
          },
        ];
      }),
    );
    entries.sort(([a], [b]) => a.localeCompare(b));
    return {
      mirrors: Object.fromEntries(entries),
      unreachable: unreachable.map((u) => u.nodeId).sort(),
    };
  }

  /**
   * Mirrors named by resync events (start, throttle, cancel, done…) stored since the last
   * round: a run can start and end between two looks at a mirror that was and is in sync.
   * "all" the first time.
   */
  async #mirrorsWithNewRunEvents(): Promise<Set<string> | "all"> {
    const since = this.#runEventsSeen;
    if (since === null) {
      const newest = await this.#db.event.findFirst({
        where: { kind: "resync" },
        orderBy: { id: "desc" },
        select: { id: true },
      });
      this.#runEventsSeen = newest?.id ?? 0n;
      return "all";
    }
    const rows = await this.#db.event.groupBy({
      by: ["mirror"],
      where: { kind: "resync", id: { gt: since } },
      _max: { id: true },
    });
    for (const r of rows)
      if (r._max.id !== null && r._max.id > this.#runEventsSeen!) this.#runEventsSeen = r._max.id;
    return new Set(rows.flatMap((r) => (r.mirror ? [r.mirror] : [])));
  }

  /**
   * The mirror's latest run. A mirror in sync with nothing running, nothing running at the
   * last look either and no resync event since cannot have a new run: its last answer
   * stands (one call per mirror that changes, not per mirror).
   */
  async #latestRun(
    m: TCollectedMirror,
    before: LiveMirror | undefined,
    touched: Set<string> | "all",
  ): Promise<TResyncProgress | null> {
    const settled =
      before !== undefined &&
      touched !== "all" &&
      !touched.has(m.uuid) &&
      m.resyncId === null &&
      m.inSync >= m.regionCount &&
      before.sync.resyncId === null &&
      before.sync.inSync >= before.sync.regionCount;
    if (settled) return before.resync;
    return m.holders[0]!.client.resync.progress.query({ uuid: m.uuid }).catch(
      () => before?.resync ?? null,
    );
  }

  #publish(part: Partial<LiveSnapshot>): void {
    const message = this.log.update({ ...this.log.snapshot, ...part });
    if (message) for (const listener of this.#listeners) listener(message);
  }

  /** Reads Postgres once and broadcasts what changed (one read at a time). */
  pollDb(): Promise<void> {
    this.#readingDb ??= this.read()
      .then((part) => this.#publish(part))
      .finally(() => {
        this.#readingDb = null;
      });
    return this.#readingDb;
  }

  /** Asks the agents once and broadcasts what changed (one round at a time). */
  pollMirrors(): Promise<void> {
    this.#mirrorsReadAt = this.#now().getTime();
    this.#readingMirrors ??= this.readMirrors()
      .then((part) => {
        if (part) this.#publish(part);
      })
      .finally(() => {
        this.#readingMirrors = null;
      });
    return this.#readingMirrors;
  }

  /** Both reads (a new stream's first snapshot, tests). */
  async poll(): Promise<void> {
    await Promise.all([this.pollDb(), this.pollMirrors()]);
  }

  /**
   * Makes the snapshot current before a new stream's first message: after a time with no
   * listener it is as old as that time, and a tab would be sent old values (and then, as
   * changes, what it already rendered).
   */
  async ready(): Promise<void> {
    if (!this.#stale) return;
    await this.poll();
    if (this.#timer) this.#stale = false;
  }

  #tick(): void {
    const quiet = () => {
      // Postgres or the agents away: the stream stays open; clients show the last values
      // with their age (nodes turn unknown when Postgres answers again).
    };
    this.pollDb().catch(quiet);
    if (this.#now().getTime() - this.#mirrorsReadAt >= this.#mirrorsIntervalMs)
      this.pollMirrors().catch(quiet);
  }

  subscribe(listener: (m: LiveMessage) => void): () => void {
    this.#listeners.add(listener);
    this.#timer ??= setInterval(() => this.#tick(), this.#intervalMs);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
        this.#stale = true;
      }
    };
  }
}
