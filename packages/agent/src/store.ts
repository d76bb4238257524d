import type { Db } from "@mirrorplane/db";
import type { Logger } from "pino";

export interface NodeRegistration {
  id: string;
  hostname: string;
  apiUrl: string;
  agentVersion: string;
  kernelRelease: string;
  sampleIntervalMs: number;
  startedAt: Date;
}

export interface SampleBatch {
  at: Date;
  points: Array<[series: string, value: number]>;
}

/**
 * Writes this node's heartbeat and samples. While Postgres is unreachable, batches wait
 * in a bounded queue (oldest dropped first, and counted) and are written, in order,
 * once it is back; the heartbeat is then refreshed so the node turns fresh again.
 * (The durable on-disk spool for events belongs to the event pipeline.)
 */
export class SampleStore {
  private readonly pending: SampleBatch[] = [];
  private droppedBatches = 0;
  private failing = false;

  constructor(
    private readonly db: Db,
    private readonly node: NodeRegistration,
    private readonly log: Logger,
    private readonly maxPendingBatches = 720,
  ) {}

  async register(): Promise<void> {
    const { id, ...rest } = this.node;
    const now = new Date();
    await this.db.node.upsert({
      where: { id },
      create: { id, ...rest, lastSeenAt: now },
      update: { ...rest, lastSeenAt: now },
      select: { id: true },
    });
  }

  /** Queues a batch and tries to write everything pending. Never throws. */
  async record(batch: SampleBatch): Promise<void> {
    this.pending.push(batch);
    while (this.pending.length > this.maxPendingBatches) {
      this.pending.shift();
      this.droppedBatches++;
    }
    await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const batches = this.pending.slice();
    const rows = batches.flatMap((b) =>
      b.points.map(([series, value]) => ({ nodeId: this.node.id, series, at: b.at, value })),
    );
    try {
      const { id, ...rest } = this.node;
      const lastSeenAt = batches[batches.length - 1]!.at;
      await this.db.$transaction([
        this.db.node.upsert({
          where: { id },
          create: { id, ...rest, lastSeenAt },
          update: { lastSeenAt, apiUrl: rest.apiUrl, sampleIntervalMs: rest.sampleIntervalMs },
          select: { id: true },
        }),
        // (node, series, at) is the primary key: a replayed batch is stored once.
        this.db.sample.createMany({ data: rows, skipDuplicates: true }),
      ]);
      this.pending.splice(0, batches.length);
      if (this.failing) {
        this.log.info(
          { replayedBatches: batches.length, droppedBatches: this.droppedBatches },
          "database reachable again; pending samples written",
        );
        this.failing = false;
        this.droppedBatches = 0;
      }
    } catch (error) {
      if (!this.failing) {
        this.log.error(
          { err: error },
          "cannot write samples; keeping them until the database is back",
        );
        this.failing = true;
      }
    }
  }

  get pendingBatches(): number {
    return this.pending.length;
  }
}
