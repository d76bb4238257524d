import { randomBytes } from "node:crypto";
import { countInSync, type LogGroup, NO_NODE, NO_REGION } from "@mirrorplane/clusterlog";
import type { TAgentRefusalCode, TResyncLog, TResyncProgress } from "@mirrorplane/contracts";
import type { THostEvent } from "../events/event.ts";
import type { MirrorInfo, MirrorInventory, MirrorLogDevice } from "../mirrors/inventory.ts";
import { type RegionMapSummary, regionMap } from "./region-map.ts";
import type { ClusterLogServer } from "./server.ts";

// Operator resync control (issue 5): start a resync of a whole mirror or a region range,
// watch its progress, throttle it, cancel it. Every change is an operation in the total
// order (`resync` in @mirrorplane/clusterlog), so every replica agrees on what is out of
// sync and who recovers what; the kernels recover through the ordinary resync requests.
//
// A kernel asks for resync work only while its in_sync hint is below the region count,
// and the hint is reset only by a resume (spec §2.17): after a full sync it never asks
// again. So starting a resync also needs each node's mirror device suspended and resumed
// (`dmsetup suspend` + `dmsetup resume`, docs/KERNEL-BRIDGE.md); the `kick` option does
// that (the simulator's kernels; on a real host the dmsetup calls, on every node).
//
// Throttling is an allowance in the replicated state, renewed by the node that owns the
// throttle: at each sample (about once a second) it orders an `allow` of the regions the
// elapsed time earns at the limit (fractions carried over), and the core hands the sweep
// out no more than that on any node until the next one. The cap holds in the order itself,
// so no region in flight on another node overshoots it (a pause ordered after the budget
// was spent overshot 2–4× at 1–3 regions/s). Regions a write waits on are still recovered
// beyond it (the core serves the priority list), so a throttle never blocks writers.

/** Where resync events go: the agent's EventPipeline fits (`emit` never blocks). */
export interface ResyncEventSink {
  emit(events: THostEvent | THostEvent[]): void;
}

/** What `resync.progress`/`start`/`cancel`/`throttle` answer (the contract's schema). */
export type ResyncProgress = TResyncProgress;

export class ResyncError extends Error {
  constructor(
    readonly code: TAgentRefusalCode,
    message: string,
  ) {
    super(message);
    this.name = "ResyncError";
  }
}

interface Tracked {
  readonly uuid: string;
  readonly id: string;
  readonly first: number;
  readonly last: number;
  readonly startedAt: number;
  state: ResyncProgress["state"];
  endedAt: number | null;
  throttle: number | null;
  samples: { at: number; inSync: number }[];
  /** When the last allowance was ordered (ms); the next earns the time since. */
  allowedAt: number;
  /** The fraction of a region earned and not yet allowed. */
  credit: number;
  progressEvents: number;
  /** The in-sync count the last progress event reported (-1: none yet). */
  lastProgressEvent: number;
  latest: ResyncProgress | null;
  /** The member whose cancel of it this replica applied (null: none yet). */
  cancelledBy?: number | null;
}

export interface ResyncControllerOptions {
  readonly server: ClusterLogServer;
  readonly nodeId: string;
  readonly events?: ResyncEventSink | null;
  /**
   * Suspend and resume the mirror on every node, one node after the other
   * (KERNEL-BRIDGE.md): the resume resets each kernel's in_sync hint, so it asks for
   * resync work again and no longer writes regions of the range "nosync" (primary leg
   * only, unmarked) because its stale hint says they are in sync.
   */
  readonly kick?: (uuid: string) => Promise<void>;
  /** Progress sampling (and throttle decisions) every this many ms. */
  readonly sampleIntervalMs?: number;
  /** A progress event every this many samples. */
  readonly eventEverySamples?: number;
  readonly now?: () => number;
  /** Mark events as coming from simulated mirrors. */
  readonly simulated?: boolean;
  /**
   * This host's kernel's mirrors (legs, health, log device): `logs()` then also reports
   * them, joined by log uuid, with the region size, log type and size of each log's CTR.
   * Without one, `logs()` reports the sync state only.
   */
  readonly inventory?: MirrorInventory | null;
}

/** A mirror (log group) this replica holds, with what the kernel and the CTR say about it. */
export type ResyncLog = TResyncLog;

export class ResyncController {
  readonly #server: ClusterLogServer;
  readonly #options: ResyncControllerOptions;
  readonly #tracked = new Map<string, Tracked>();
  readonly #now: () => number;
  #timer: NodeJS.Timeout | null = null;
  #unsubscribe: (() => void) | null = null;
  #busy = false;

  constructor(options: ResyncControllerOptions) {
    this.#server = options.server;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.sample(), this.#options.sampleIntervalMs ?? 1000);
    this.#timer.unref();
    // A cancel ordered by any member ends the resync it names: the starter then reports it
    // cancelled (by whom), not failed, when its replica no longer runs it.
    this.#unsubscribe = this.#server.onApplied((entry) => {
      const op = entry.op;
      if (op.kind !== "resync" || op.resync.action !== "cancel") return;
      const t = this.#tracked.get(op.resync.uuid);
      if (t && t.id === op.resync.id && t.endedAt === null) t.cancelledBy = entry.origin;
    });
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  #group(uuid: string): LogGroup | undefined {
    return this.#server.clusterLog.state.groups.get(uuid);
  }

  /** The region map of a log, reduced to at most `maxBuckets` buckets (region-map.ts). */
  regionMap(uuid: string, maxBuckets: number): RegionMapSummary {
    const group = this.#group(uuid);
    if (!group) throw new ResyncError("NOT_FOUND", `no resumed log ${uuid}`);
    return regionMap(group, maxBuckets);
  }

  /**
   * Mirrors (log groups) this replica knows, with their sync state; with an inventory also
   * legs and their health, region size, log type and device, size.
   */
  async logs(): Promise<ResyncLog[]> {
    const state = this.#server.clusterLog.state;
    const groups = [...state.groups.values()].sort((a, b) => a.uuid.localeCompare(b.uuid));
    const inventory = this.#options.inventory;
    if (!inventory) {
      return groups.map((g) => ({
        uuid: g.uuid,
        regionCount: g.regionCount,
        inSync: g.syncBits.count,
        resyncId: g.resync?.id ?? null,
      }));
    }
    // `list()` never throws by contract; a broken inventory still must not fail the call.
    const listed = await inventory.list().catch((error: unknown) => ({
      mirrors: [] as MirrorInfo[],
      reason: error instanceof Error ? error.message : String(error),
    }));
    const byUuid = new Map<string, MirrorInfo>();
    for (const m of listed.mirrors) if (m.logUuid) byUuid.set(m.logUuid, m);
    return groups.map((g) => {
      const kernel = byUuid.get(g.uuid);
      // The CTR this node's kernel sent, else the log server's: the same table on every node.
      const config = (state.memberInstance(g, this.#server.nodeId) ?? state.serverInstance(g))
        ?.config;
      const ctrLogDevice: MirrorLogDevice | null =
        config?.logType === "clustered-disk" && config.logDevice
          ? {
              device: config.logDevice,
              majorMinor: /^\d+:\d+$/.test(config.logDevice) ? config.logDevice : null,
              health: g.logDevFailed ? "D" : "A",
            }
          : null;
      return {
        uuid: g.uuid,
        regionCount: g.regionCount,
        inSync: g.syncBits.count,
        resyncId: g.resync?.id ?? null,
        name: kernel?.name ?? null,
        logType: config?.logType ?? kernel?.logType ?? null,
        regionSectors: config?.regionSize ?? kernel?.regionSectors ?? null,
        sizeBytes: config
          ? Number(config.deviceSize) * 512
          : kernel
            ? kernel.sizeSectors * 512
            : null,
        legs: kernel?.legs ?? null,
        legsUnknownReason: kernel
          ? null
          : (listed.reason ?? "this host's kernel reports no mirror with this log"),
        logDevice: kernel?.logDevice
          ? { ...kernel.logDevice, health: kernel.logDevice.health ?? ctrLogDevice?.health ?? null }
          : ctrLogDevice,
        table: kernel?.table ?? null,
        dmUuid: kernel?.dmUuid ?? null,
      };
    });
  }

  async startResync(input: {
    uuid: string;
    first?: number | undefined;
    last?: number | undefined;
    throttle?: number | undefined;
    actor?: string | undefined;
  }): Promise<ResyncProgress> {
    const group = this.#group(input.uuid);
    if (!group) throw new ResyncError("NOT_FOUND", `no resumed log ${input.uuid}`);
    if (group.resync) {
      throw new ResyncError("CONFLICT", `resync ${group.resync.id} is already running`);
    }
    const first = input.first ?? 0;
    const last = input.last ?? group.regionCount - 1;
    if (first < 0 || last < first || last >= group.regionCount) {
      throw new ResyncError(
        "BAD_REQUEST",
        `range ${first}–${last} is not inside 0–${group.regionCount - 1}`,
      );
    }
    const id = `${this.#now().toString(36)}-${randomBytes(3).toString("hex")}`;
    // Armed: nothing is handed out until every node's kernel was suspended and resumed
    // (its hint reset to 0), so no copy races a write made "nosync" through a stale hint.
    await this.#server.publishControl({
      kind: "resync",
      resync: { action: "start", uuid: input.uuid, id, first, last, armed: true },
    });
    try {
      await this.#options.kick?.(input.uuid);
    } finally {
      // Tracked (its throttle enforced) before the sweep can hand out its first region.
      // Armed, the sweep has recovered nothing of the range so far.
      const armed = this.#group(input.uuid);
      if (armed?.resync?.id === id) {
        const now = this.#now();
        this.#tracked.set(input.uuid, {
          uuid: input.uuid,
          id,
          first,
          last,
          startedAt: now,
          state: "running",
          endedAt: null,
          throttle: input.throttle ?? null,
          samples: [],
          allowedAt: now,
          credit: 0,
          progressEvents: 0,
          lastProgressEvent: -1,
          latest: null,
        });
        // The first window's allowance, ordered before the sweep may start.
        if (input.throttle !== undefined) await this.#allow(this.#tracked.get(input.uuid)!, true);
      }
      await this.#server.publishControl({
        kind: "resync",
        resync: { action: "unpause", uuid: input.uuid, id },
      });
    }
    const after = this.#group(input.uuid);
    const tracked = this.#tracked.get(input.uuid);
    if (after?.resync?.id !== id || tracked?.id !== id) {
      if (tracked?.id === id) this.#tracked.delete(input.uuid);
      throw new ResyncError("CONFLICT", "another resync started first, or the log went away");
    }
    const progress = this.#progress(tracked, after);
    this.#event(
      tracked,
      "start",
      "info",
      `resync of ${input.uuid} regions ${first}–${last} started`,
      {
        actor: input.actor ?? null,
        regions: last - first + 1,
        outOfSyncBefore: last - first + 1 - after.resync.madeCount,
        throttle: tracked.throttle,
      },
    );
    return progress;
  }

  /**
   * Stop the sweep. Nothing is declared in sync (a kernel may have written a region of
   * the range to one leg only); what is still out of sync is recovered when written, and
   * in full after the next resume.
   */
  async cancel(uuid: string, actor?: string): Promise<ResyncProgress> {
    // Any member may stop a running resync, whoever started it (its starter may be gone).
    const tracked = this.#runningHere(uuid) ?? this.#adopt(uuid);
    await this.#server.publishControl({
      kind: "resync",
      resync: { action: "cancel", uuid, id: tracked.id },
    });
    tracked.state = "cancelled";
    tracked.endedAt = this.#now();
    const group = this.#group(uuid);
    const progress = this.#progress(tracked, group);
    this.#event(tracked, "cancelled", "notice", `resync of ${uuid} cancelled`, {
      actor: actor ?? null,
      inSync: progress.inSync,
      total: progress.total,
    });
    return progress;
  }

  /** Limit the sweep to `regionsPerSecond` (null: no limit). */
  async throttle(uuid: string, regionsPerSecond: number | null): Promise<ResyncProgress> {
    const tracked = this.#running(uuid);
    tracked.throttle = regionsPerSecond;
    // A new window at the new rate from now (or the limit lifted at once).
    tracked.credit = 0;
    await this.#allow(tracked, true);
    this.#event(tracked, "throttle", "info", `resync of ${uuid} throttle set`, {
      regionsPerSecond,
    });
    await this.sample();
    return this.#progress(tracked, this.#group(uuid));
  }

  #running(uuid: string): Tracked {
    const tracked = this.#runningHere(uuid);
    if (!tracked) {
      const elsewhere = this.#group(uuid)?.resync;
      throw new ResyncError(
        "NOT_FOUND",
        elsewhere
          ? `resync ${elsewhere.id} of ${uuid} was started on another member: change it there`
          : `no running resync of ${uuid} started here`,
      );
    }
    return tracked;
  }

  /** The resync of `uuid` this controller started, if the replica still runs it. */
  #runningHere(uuid: string): Tracked | null {
    const tracked = this.#tracked.get(uuid);
    const group = this.#group(uuid);
    if (!tracked || !group?.resync || group.resync.id !== tracked.id || tracked.endedAt !== null) {
      return null;
    }
    return tracked;
  }

  /** A resync another member started, tracked here from the replica's state (to cancel it). */
  #adopt(uuid: string): Tracked {
    const r = this.#group(uuid)?.resync;
    if (!r) throw new ResyncError("NOT_FOUND", `no running resync of ${uuid}`);
    const now = this.#now();
    const tracked: Tracked = {
      uuid,
      id: r.id,
      first: r.first,
      last: r.last,
      startedAt: now,
      state: "running",
      endedAt: null,
      throttle: null,
      samples: [],
      allowedAt: now,
      credit: 0,
      progressEvents: 0,
      lastProgressEvent: -1,
      latest: null,
    };
    this.#tracked.set(uuid, tracked);
    return tracked;
  }

  /** Progress of the latest resync of `uuid` known here (running or ended). */
  progress(uuid: string): ResyncProgress | null {
    const tracked = this.#tracked.get(uuid);
    if (tracked)
      return tracked.endedAt === null ? this.#progress(tracked, this.#group(uuid)) : tracked.latest;
    // Started elsewhere: report what the replica knows.
    const group = this.#group(uuid);
    if (!group?.resync) return null;
    const r = group.resync;
    return this.#progress(
      {
        uuid,
        id: r.id,
        first: r.first,
        last: r.last,
        startedAt: 0,
        state: r.paused ? "paused" : "running",
        endedAt: null,
        throttle: null,
        samples: [],
        allowedAt: 0,
        credit: 0,
        progressEvents: 0,
        lastProgressEvent: -1,
        latest: null,
      },
      group,
    );
  }

  #progress(t: Tracked, group: LogGroup | undefined): ResyncProgress {
    const total = t.last - t.first + 1;
    const inSync = group ? countInSync(group.syncBits, t.first, t.last) : (t.latest?.inSync ?? 0);
    const rate = windowedRate(t.samples);
    const remaining = total - inSync;
    const running = t.endedAt === null;
    const recovering = group && group.recoveringRegion !== NO_REGION;
    const progress: ResyncProgress = {
      uuid: t.uuid,
      id: t.id,
      state: running ? (group?.resync?.paused ? "paused" : "running") : t.state,
      first: t.first,
      last: t.last,
      total,
      inSync,
      percent: Math.min(100, Math.max(0, Math.floor((inSync / total) * 1000) / 10)),
      rate,
      etaSeconds: running && rate && rate > 0 ? Math.ceil(remaining / rate) : null,
      recoveringNode: recovering && group.recoverer !== NO_NODE ? group.recoverer : null,
      recoveringRegion: recovering ? group.recoveringRegion : null,
      throttle: t.throttle,
      startedAt: t.startedAt,
      endedAt: t.endedAt,
      logInSync: group?.syncBits.count ?? 0,
      regionCount: group?.regionCount ?? 0,
    };
    t.latest = progress;
    return progress;
  }

  /**
   * Order the sweep's allowance: a new window's (`fresh`: one second's worth at once), or
   * the whole regions earned at the throttle since the last (fractions carried, nothing
   * ordered until one is earned); no limit when the throttle is lifted.
   */
  async #allow(t: Tracked, fresh: boolean): Promise<void> {
    const now = this.#now();
    let regions: number | null = null;
    if (t.throttle !== null) {
      const earned = fresh
        ? t.throttle
        : t.credit + (t.throttle * Math.max(0, now - t.allowedAt)) / 1000;
      if (earned < 1 && !fresh) return;
      regions = Math.floor(earned);
      t.credit = earned - regions;
    }
    t.allowedAt = now;
    await this.#server.publishControl({
      kind: "resync",
      resync: { action: "allow", uuid: t.uuid, id: t.id, regions },
    });
  }

  /** One sampling pass: progress samples and events, throttle decisions, completion. */
  async sample(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      for (const t of this.#tracked.values()) {
        if (t.endedAt !== null) continue;
        const group = this.#group(t.uuid);
        const now = this.#now();
        const complete = group !== undefined && group.syncBits.findNextZero(t.first) > t.last;
        if (!complete && group && group.resync?.id !== t.id && t.cancelledBy != null) {
          t.state = "cancelled";
          t.endedAt = now;
          const progress = this.#progress(t, group);
          this.#event(
            t,
            "cancelled-elsewhere",
            "notice",
            `resync of ${t.uuid} cancelled by member ${t.cancelledBy}`,
            { by: t.cancelledBy, inSync: progress.inSync, total: progress.total },
          );
          continue;
        }
        if (!complete && (!group || group.resync?.id !== t.id)) {
          t.state = "failed";
          t.endedAt = now;
          this.#progress(t, group);
          this.#event(t, "failed", "error", `resync of ${t.uuid} failed: the log went away`, {
            inSync: t.latest?.inSync ?? null,
          });
          continue;
        }
        if (!group) continue;
        const inSync = countInSync(group.syncBits, t.first, t.last);
        t.samples.push({ at: now, inSync });
        if (t.samples.length > 20) t.samples.shift();
        if (inSync === t.last - t.first + 1) {
          t.state = "done";
          t.endedAt = now;
          const progress = this.#progress(t, group);
          this.#event(t, "done", "info", `resync of ${t.uuid} done`, {
            regions: progress.total,
            seconds: (now - t.startedAt) / 1000,
          });
          continue;
        }
        // Throttle: the next window's allowance (the first was ordered at the start).
        if (t.throttle !== null) await this.#allow(t, false);
        const progress = this.#progress(t, group);
        // A progress event every few samples, and only when it moved (a stalled resync
        // says nothing new); the key names the count and the sample, so none repeats.
        if (
          ++t.progressEvents % (this.#options.eventEverySamples ?? 10) === 0 &&
          progress.inSync !== t.lastProgressEvent
        ) {
          t.lastProgressEvent = progress.inSync;
          this.#event(
            t,
            `progress:${progress.inSync}:${t.progressEvents}`,
            "debug",
            `resync of ${t.uuid} at ${progress.percent} %`,
            {
              ...progress,
            },
          );
        }
      }
    } finally {
      this.#busy = false;
    }
  }

  #event(
    t: Tracked,
    what: string,
    severity: THostEvent["severity"],
    message: string,
    data: Record<string, unknown>,
  ): void {
    this.#options.events?.emit({
      key: `resync:${this.#options.nodeId}:${t.uuid}:${t.id}:${what}`,
      kind: "resync",
      severity,
      source: "agent",
      occurredAt: this.#now(),
      device: null,
      message,
      count: 1,
      mirror: t.uuid,
      regions: { start: t.first, end: t.last },
      simulated: this.#options.simulated ?? false,
      data: { what: what.replace(/:.*/, ""), resyncId: t.id, ...data },
    });
  }
}

/** Regions per second over the retained samples (a window, not since the start). */
function windowedRate(samples: readonly { at: number; inSync: number }[]): number | null {
  if (samples.length < 2) return null;
  const a = samples[0]!;
  const b = samples[samples.length - 1]!;
  const seconds = (b.at - a.at) / 1000;
  if (seconds <= 0) return null;
  return Math.round(((b.inSync - a.inSync) / seconds) * 10) / 10;
}
