import type { IoRequest } from "@mirrorplane/clusterlog";
import type { Logger } from "pino";
import type { LogDevice, LogDeviceProvider } from "./log-devices.ts";
import { RateLimitedLog } from "./rate-limited-log.ts";

// Performs the I/O the ordered stream addresses to this node, one lane per log device:
// in order (README of the core: "an agent must run the I/O addressed to it in order"),
// asynchronously so a slow or hung device stalls only its own logs (pitfall P36), and
// with consecutive queued writes of one device folded into one write of the newest image
// — each image is the whole log at a later point of the order, so the newest one is what
// every earlier FLUSH needs on disk.

export type IoCompletion = (io: IoRequest, error: number, data?: Uint8Array) => void;

interface Lane {
  readonly queue: IoRequest[];
  running: boolean;
  device: LogDevice | null;
  closeWhenIdle: boolean;
}

export class LogIoQueue {
  readonly #devices: LogDeviceProvider;
  readonly #complete: IoCompletion;
  readonly #log: Logger;
  readonly #openFailures: RateLimitedLog;
  readonly #lanes = new Map<string, Lane>();
  #idleWaiters: (() => void)[] = [];
  /** Writes folded into a later one. */
  coalescedWrites = 0;

  constructor(devices: LogDeviceProvider, complete: IoCompletion, log: Logger) {
    this.#devices = devices;
    this.#complete = complete;
    this.#log = log;
    this.#openFailures = new RateLimitedLog(log);
  }

  get idle(): boolean {
    for (const lane of this.#lanes.values()) if (lane.running) return false;
    return true;
  }

  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  enqueue(io: IoRequest): void {
    const lane = this.#lane(io.logDevice);
    lane.queue.push(io);
    lane.closeWhenIdle = false;
    if (!lane.running) {
      lane.running = true;
      void this.#run(io.logDevice, lane);
    }
  }

  /** Close `logDevice` once its queued I/O is done (no table of this node uses it any more). */
  release(logDevice: string): void {
    const lane = this.#lanes.get(logDevice);
    if (!lane) return;
    if (lane.running) {
      lane.closeWhenIdle = true;
      return;
    }
    this.#lanes.delete(logDevice);
    void lane.device?.close();
  }

  /** Release every device not named in `inUse`. */
  releaseUnused(inUse: ReadonlySet<string>): void {
    for (const logDevice of [...this.#lanes.keys()]) {
      if (!inUse.has(logDevice)) this.release(logDevice);
    }
  }

  /** Close every idle device now, and each busy one when its lane finishes. */
  async closeAll(): Promise<void> {
    const idle: Lane[] = [];
    for (const [logDevice, lane] of this.#lanes) {
      if (lane.running) {
        lane.closeWhenIdle = true;
      } else {
        idle.push(lane);
        this.#lanes.delete(logDevice);
      }
    }
    await Promise.all(idle.map((lane) => lane.device?.close()));
  }

  #lane(logDevice: string): Lane {
    let lane = this.#lanes.get(logDevice);
    if (!lane) {
      lane = { queue: [], running: false, device: null, closeWhenIdle: false };
      this.#lanes.set(logDevice, lane);
    }
    return lane;
  }

  async #run(logDevice: string, lane: Lane): Promise<void> {
    try {
      while (lane.queue.length > 0) {
        const io = lane.queue.shift()!;
        if (io.kind === "read") {
          const device = await this.#device(logDevice, lane);
          const read = device ? await device.read(io.length) : null;
          if (read?.ok) {
            this.#complete(io, 0, read.value);
          } else {
            if (read) this.#failed(logDevice, lane, read.message);
            this.#complete(io, -5);
          }
          continue;
        }
        const batch: IoRequest[] = [io];
        while (lane.queue[0]?.kind === "write") batch.push(lane.queue.shift()!);
        const newest = batch[batch.length - 1]!;
        this.coalescedWrites += batch.length - 1;
        const device = await this.#device(logDevice, lane);
        const written =
          device && newest.kind === "write" ? await device.writeDurably(newest.image) : null;
        if (written && !written.ok) this.#failed(logDevice, lane, written.message);
        // Every I/O failure is -EIO in the ordered stream, like cmirrord's FLUSH (spec
        // §2.9); the errno itself is in the log line.
        const error = written?.ok ? 0 : -5;
        for (const done of batch) this.#complete(done, error);
      }
    } catch (error) {
      this.#log.error({ err: error, logDevice }, "log I/O lane failed");
    } finally {
      lane.running = false;
      if (lane.queue.length > 0) {
        lane.running = true;
        void this.#run(logDevice, lane);
      } else {
        if (lane.closeWhenIdle) this.release(logDevice);
        if (this.idle) for (const resolve of this.#idleWaiters.splice(0)) resolve();
      }
    }
  }

  async #device(logDevice: string, lane: Lane): Promise<LogDevice | null> {
    if (lane.device) return lane.device;
    const opened = await this.#devices.open(logDevice);
    if (!opened.ok) {
      // A CTR can name any device: one line a minute per errno, with how many since (issue 15).
      this.#openFailures.error(
        { logDevice, errno: opened.errno, reason: opened.message },
        `log device unavailable (${opened.errno})`,
      );
      return null;
    }
    lane.device = opened.value;
    return lane.device;
  }

  /** After a failure the device is reopened next time (it may have been replaced). */
  #failed(logDevice: string, lane: Lane, message: string): void {
    this.#log.error({ logDevice }, message);
    const device = lane.device;
    lane.device = null;
    void device?.close();
  }
}
