import {
  type IngestPool,
  type NodeRow,
  upsertNode,
  writeHeartbeatAndSamples,
} from "@mirrorplane/db/ingest";
import type { Logger } from "pino";

export type NodeRegistration = Omit<NodeRow, "lastSeenAt">;

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
    private readonly pool: IngestPool,
    private readonly node: NodeRegistration,
    private readonly log: Logger,
    private readonly maxPendingBatches = 720,
  ) {}

  async register(): Promise<void> {
    await upsertNode(this.pool, { ...this.node, lastSeenAt: new Date() });
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
    const samples = batches.flatMap((b) =>
      b.points.map(([series, value]) => ({ series, at: b.at, value })),
    );
    try {
      const lastSeenAt = batches[batches.length - 1]!.at;
      await writeHeartbeatAndSamples(this.pool, { ...this.node, lastSeenAt }, samples);
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
