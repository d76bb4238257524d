import type { Db } from "@mirrorplane/db";
import { freshness } from "../freshness";
import {
  LiveLog,
  type LiveMessage,
  type LiveSnapshot,
  type LiveLog as TLiveLog,
} from "./live-state";

/**
 * One poller per web process, shared by every open tab: it reads the little the live
 * stream carries from Postgres once a second (PERF.md PB7: ≤ 10 UI updates a second per
 * tab) and fans the resulting change sets out. It runs only while someone listens.
 */
export class LiveHub {
  readonly log: TLiveLog = new LiveLog();
  #listeners = new Set<(m: LiveMessage) => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #polling = false;

  constructor(
    private readonly db: Db,
    private readonly intervalMs = 1_000,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async read(): Promise<LiveSnapshot> {
    const [nodes, event, auditRow] = await Promise.all([
      this.db.node.findMany({
        select: { id: true, hostname: true, lastSeenAt: true, sampleIntervalMs: true },
      }),
      this.db.event.findFirst({ orderBy: { id: "desc" }, select: { id: true } }),
      this.db.auditAction.findFirst({ orderBy: { id: "desc" }, select: { id: true } }),
    ]);
    const now = this.now();
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

  /** Reads once and broadcasts what changed. */
  async poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      const message = this.log.update(await this.read());
      if (message) for (const listener of this.#listeners) listener(message);
    } finally {
      this.#polling = false;
    }
  }

  subscribe(listener: (m: LiveMessage) => void): () => void {
    this.#listeners.add(listener);
    this.#timer ??= setInterval(() => {
      this.poll().catch(() => {
        // Postgres away: the stream stays open; clients show the last values with their age.
      });
    }, this.intervalMs);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }
}
