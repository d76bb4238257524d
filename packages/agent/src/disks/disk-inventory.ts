import type { TDisk, TDiskInventory, TDiskLeg, TSmart } from "@mirrorplane/contracts";
import type { MirrorInventoryResult } from "../mirrors/inventory.ts";
import { type BlockDisk, readBlockDisks } from "./block-disks.ts";
import { emptySmart, readSmart } from "./smartctl.ts";

// The node's disk inventory (issue 13): sysfs is read on every call (cheap, and what an
// operator just plugged in shows at once); SMART is not free (an admin command per drive,
// some drives count each read in their error log, KERNEL-SOURCES.md §3.2 caveat), so it
// runs every `intervalMs` and on demand, a few drives at a time, each bounded by a timeout,
// and the last reading of each drive is served in between with its time.

export interface DiskInventoryOptions {
  readonly root: string;
  /** The smartctl command (a path or a name on PATH). */
  readonly smartctl: string;
  /** Between SMART rounds; null: SMART is only read on demand. */
  readonly intervalMs: number | null;
  /** Per smartctl run (default 20 s: a drive busy with a self-test answers slowly). */
  readonly timeoutMs?: number;
  /** smartctl runs at once (default 2). */
  readonly concurrency?: number;
  /** This host's mirrors, to place legs on disks; never throws (a `reason` instead). */
  readonly mirrors: () => Promise<MirrorInventoryResult>;
  /** Called after each SMART round with the inventory and the names of the devices it read. */
  readonly onSmartRead?: (inventory: TDiskInventory, read: ReadonlySet<string>) => void;
  readonly now?: () => Date;
}

/** Device-mapper, md and pmem devices have no SMART of their own: their disks do. */
function smartReason(disk: BlockDisk): string | null {
  if (disk.kind === "dm")
    return `a device-mapper device: SMART is read from the devices beneath it${disk.dm?.slaves.length ? ` (${disk.dm.slaves.join(", ")})` : ""}`;
  if (disk.kind === "md") return "an md RAID device: SMART is read from its member disks";
  if (disk.kind === "pmem") return "persistent memory: no SMART (see its badblocks and the nd bus)";
  return null;
}

/** The mirror legs on `disk` (the leg itself, or built on it), in mirror and table order. */
export function legsOn(
  disk: Pick<BlockDisk, "name" | "partitions">,
  mirrors: MirrorInventoryResult["mirrors"],
): TDiskLeg[] {
  const names = new Set([disk.name, ...disk.partitions]);
  return mirrors.flatMap((m) =>
    m.legs.flatMap((leg, index) =>
      names.has(leg.device) || leg.underlying.some((u) => names.has(u))
        ? [{ mirror: m.name, logUuid: m.logUuid, index, device: leg.device, health: leg.health }]
        : [],
    ),
  );
}

export class DiskInventory {
  readonly #options: DiskInventoryOptions;
  readonly #now: () => Date;
  /** Last SMART reading by device name. */
  readonly #smart = new Map<string, TSmart>();
  #round: Promise<TDiskInventory> | null = null;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #abort = new AbortController();

  constructor(options: DiskInventoryOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** sysfs now, legs now, SMART as last read. */
  async list(): Promise<TDiskInventory> {
    const [blocks, mirrors] = await Promise.all([
      readBlockDisks(this.#options.root),
      this.#options.mirrors().catch((error: unknown) => ({
        mirrors: [],
        reason: error instanceof Error ? error.message : String(error),
      })),
    ]);
    const disks: TDisk[] = blocks.map((b) => {
      const notSmart = smartReason(b);
      return {
        ...b,
        legs: legsOn(b, mirrors.mirrors),
        smart: notSmart
          ? emptySmart("unavailable", [notSmart])
          : (this.#smart.get(b.name) ?? emptySmart("pending")),
      };
    });
    return {
      disks,
      readAt: this.#now(),
      legsUnknownReason: mirrors.reason,
      smartctl: { path: this.#options.smartctl, intervalMs: this.#options.intervalMs },
    };
  }

  /**
   * Reads SMART of `device` (or of every device that has SMART) now. A round already running
   * is joined, not doubled. Answers the inventory after it.
   */
  refresh(device?: string): Promise<TDiskInventory> {
    if (this.#round && device === undefined) return this.#round;
    const round = this.#read(device).finally(() => {
      if (this.#round === round) this.#round = null;
    });
    if (device === undefined) this.#round = round;
    return round;
  }

  async #read(device: string | undefined): Promise<TDiskInventory> {
    const blocks = (await readBlockDisks(this.#options.root)).filter(
      (b) => smartReason(b) === null && (device === undefined || b.name === device),
    );
    const queue = [...blocks];
    const timeoutMs = this.#options.timeoutMs ?? 20_000;
    const worker = async () => {
      for (let b = queue.shift(); b; b = queue.shift()) {
        if (this.#stopped) return;
        const reading = await readSmart(
          this.#options.smartctl,
          b.name,
          timeoutMs,
          this.#now,
          this.#abort.signal,
        );
        if (this.#stopped) return;
        const last = this.#smart.get(b.name);
        // A disk in standby was not woken: its last reading stands, saying so.
        if (
          reading.status === "unavailable" &&
          reading.reasons.some((r) => /standby/i.test(r)) &&
          last &&
          last.status !== "unavailable" &&
          last.status !== "pending"
        ) {
          this.#smart.set(b.name, {
            ...last,
            reasons: [...last.reasons, "in standby: not woken to read SMART"],
          });
          continue;
        }
        this.#smart.set(b.name, reading);
      }
    };
    const workers = Math.max(1, Math.min(this.#options.concurrency ?? 2, blocks.length));
    await Promise.all(Array.from({ length: workers }, worker));
    const inventory = await this.list();
    if (!this.#stopped) this.#options.onSmartRead?.(inventory, new Set(blocks.map((b) => b.name)));
    return inventory;
  }

  /** The first round now, then one every `intervalMs`. */
  start(): void {
    if (this.#options.intervalMs === null) return;
    const tick = () => {
      if (this.#stopped) return;
      void this.refresh()
        .catch(() => {})
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(tick, this.#options.intervalMs!);
        });
    };
    tick();
  }

  /** Stops the rounds: a smartctl still running is killed. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#round?.catch(() => {});
  }
}
