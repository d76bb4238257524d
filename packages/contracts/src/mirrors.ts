import { z } from "zod";

/**
 * Region states of the dashboard's region map, one byte per bucket: the worst state of the
 * bucket's regions (recovering > marked > out of sync > in sync).
 */
export const regionState = { inSync: 0, outOfSync: 1, marked: 2, recovering: 3 } as const;
export type TRegionState = (typeof regionState)[keyof typeof regionState];

/**
 * dm-raid1's health character per leg (KERNEL-SOURCES.md §3.3, `device_status_char`):
 * A alive (no error counted), F flush failed, D dead (write failure), S sync failure,
 * R read failure, U unclassified. Only `A` is a leg without errors; the error count is
 * cleared only by loading a new table, so a leg never goes back to `A` by itself.
 */
export const legHealthChars = ["A", "F", "D", "S", "R", "U"] as const;
export const ZLegHealth = z.enum(legHealthChars);
export type TLegHealth = z.infer<typeof ZLegHealth>;

/** One leg of a mirror as this host's kernel has it, in table order. */
export const ZMirrorLeg = z.object({
  /** The block device's kernel name (`dm-3`, `sdb`), its `M:m` when unresolved, or the simulator's leg file. */
  device: z.string(),
  /** The device-mapper name (`vg0-lv_data_mimage_0`) when the leg is a dm device. */
  label: z.string().nullable(),
  majorMinor: z.string().nullable(),
  health: ZLegHealth,
  /** The table's first leg: dm-raid1's default mirror when the table was loaded. */
  primary: z.boolean(),
  /**
   * The default mirror now: reads go to it and recovery copies from it. dm-raid1 moves it,
   * when it fails, to the first leg without errors (dm-raid1.c fail_mirror), so it is the
   * first `A` leg; none when every leg has failed.
   */
  source: z.boolean(),
  /**
   * Devices it is built on (sysfs `slaves`, recursively, and each partition's disk): a
   * failure of any of them takes the leg too (the blast radius).
   */
  underlying: z.array(z.string()),
});
export type TMirrorLeg = z.infer<typeof ZMirrorLeg>;

export const ZMirrorLogDevice = z.object({
  device: z.string(),
  majorMinor: z.string().nullable(),
  /** The log server's device health as STATUS_INFO reports it (`A`/`D`); null: unknown. */
  health: z.enum(["A", "D"]).nullable(),
});
export type TMirrorLogDevice = z.infer<typeof ZMirrorLogDevice>;

/**
 * A mirror (log group) an agent's replica holds, with what the kernel and the CTR say about
 * it. Every field after `resyncId` is optional: older agents, and agents without a kernel
 * inventory, leave them out (unknown, not absent).
 */
export const ZResyncLog = z.object({
  uuid: z.string(),
  regionCount: z.number(),
  inSync: z.number(),
  resyncId: z.string().nullable(),
  /** The dm device (or simulated mirror) name on this host. */
  name: z.string().nullable().optional(),
  /** `clustered-disk` or `clustered-core` (from the log's CTR). */
  logType: z.string().nullable().optional(),
  /** Region size in 512-byte sectors (from the log's CTR). */
  regionSectors: z.number().nullable().optional(),
  /** The mirror's size (the CTR's target length × 512). */
  sizeBytes: z.number().nullable().optional(),
  /** This host's kernel's legs in table order; null when it does not report the mirror. */
  legs: z.array(ZMirrorLeg).nullable().optional(),
  /** Why `legs` is null. */
  legsUnknownReason: z.string().nullable().optional(),
  logDevice: ZMirrorLogDevice.nullable().optional(),
  /**
   * The mirror target's line as `dmsetup table` prints it after the name (`0 4194304 mirror
   * userspace 4 …`), when this host's kernel reports it: what a leg replacement rewrites.
   */
  table: z.string().nullable().optional(),
  /** The dm device's uuid (`LVM-…` when LVM made it), when sysfs shows it. */
  dmUuid: z.string().nullable().optional(),
});
export type TResyncLog = z.infer<typeof ZResyncLog>;

export const resyncStates = ["running", "paused", "done", "cancelled", "failed"] as const;
export const ZResyncState = z.enum(resyncStates);
export type TResyncState = z.infer<typeof ZResyncState>;

/** The latest resync of a mirror: regions in sync, windowed rate, who recovers what. */
export const ZResyncProgress = z.object({
  uuid: z.string(),
  id: z.string(),
  state: ZResyncState,
  first: z.number(),
  last: z.number(),
  total: z.number(),
  inSync: z.number(),
  percent: z.number(),
  /** Regions per second over the last samples (null until there are two). */
  rate: z.number().nullable(),
  /** Seconds left at that rate, or null when there is no stable rate. */
  etaSeconds: z.number().nullable(),
  recoveringNode: z.number().nullable(),
  recoveringRegion: z.number().nullable(),
  throttle: z.number().nullable(),
  startedAt: z.number(),
  endedAt: z.number().nullable(),
  /** The whole log, for context (regions in sync / region count). */
  logInSync: z.number(),
  regionCount: z.number(),
});
export type TResyncProgress = z.infer<typeof ZResyncProgress>;

/** A mirror by its userspace log's uuid. */
export const ZLogUuid = z.object({ uuid: z.string().min(1).max(128) });

/** A resync's speed limit in regions per second. */
export const ZRegionsPerSecond = z.number().int().min(1).max(10_000_000);

/**
 * The fields of a resync's range. Objects with a refinement cannot be extended, so each
 * input extends this and then refines with `firstNotAfterLast`.
 */
export const ZResyncRangeFields = ZLogUuid.extend({
  /** Inclusive region range; both omitted = the whole mirror. */
  first: z.number().int().min(0).optional(),
  last: z.number().int().min(0).optional(),
  /** Regions per second at most (omitted: unthrottled). */
  throttle: ZRegionsPerSecond.optional(),
});

export const firstNotAfterLast = [
  (r: { first?: number | undefined; last?: number | undefined }) =>
    r.first === undefined || r.last === undefined || r.first <= r.last,
  "first must not be after last",
] as const;

/** The range the dashboard's operators resync (also what the agent's `resync.start` takes). */
export const ZResyncRange = ZResyncRangeFields.refine(...firstNotAfterLast);

/** Who asked, as the control plane signed them in (for the agent's event). */
export const ZActorName = z.string().max(200);

export const ZResyncStart = ZResyncRangeFields.extend({
  actor: ZActorName.optional(),
}).refine(...firstNotAfterLast);
export type TResyncStart = z.infer<typeof ZResyncStart>;

export const ZRegionMapInput = ZLogUuid.extend({
  buckets: z.number().int().min(1).max(1_000_000).default(115_200),
});

/**
 * A mirror's regions reduced to at most `buckets` buckets: base64 of one byte per bucket,
 * each a `regionState`.
 */
export const ZRegionMap = z.object({
  regionCount: z.number(),
  regionsPerBucket: z.number(),
  buckets: z.string(),
});
export type TRegionMap = z.infer<typeof ZRegionMap>;
