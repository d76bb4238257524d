import { z } from "zod";

/**
 * The khugepaged/THP files an agent writes (KERNEL-SOURCES.md §4.1–4.2), as paths under
 * /sys/kernel/mm/transparent_hugepage; the per-size `hugepages-<n>kB/` files too.
 */
export const tunableFiles = [
  "khugepaged/pages_to_scan",
  "khugepaged/scan_sleep_millisecs",
  "khugepaged/alloc_sleep_millisecs",
  "khugepaged/defrag",
  "khugepaged/max_ptes_none",
  "khugepaged/max_ptes_swap",
  "khugepaged/max_ptes_shared",
  "enabled",
  "defrag",
  "shmem_enabled",
  "use_zero_page",
] as const;
const rePerSize = /^hugepages-\d{1,8}kB\/(enabled|shmem_enabled)$/;

export const ZTunableName = z
  .string()
  .refine(
    (name) => (tunableFiles as readonly string[]).includes(name) || rePerSize.test(name),
    "not a writable khugepaged/THP tunable",
  );

/** `khugepaged.setTunable`'s input; the agent validates the value as the kernel does. */
export const ZTunableWrite = z
  .object({
    /** Path under /sys/kernel/mm/transparent_hugepage, e.g. `khugepaged/pages_to_scan`. */
    name: ZTunableName,
    value: z.union([z.string().max(64), z.number()]),
    /** Who asked: the control plane passes the signed-in operator. */
    actor: z.object({ id: z.string().max(200).optional(), name: z.string().min(1).max(200) }),
    reason: z.string().max(500).optional(),
  })
  .strict();
export type TTunableWrite = z.infer<typeof ZTunableWrite>;

/** A tunable written: the file's text before and the value written. */
export const ZTunableChange = z.object({
  name: z.string(),
  old: z.string().nullable(),
  new: z.string(),
  changedAt: z.date(),
});
export type TTunableChange = z.infer<typeof ZTunableChange>;

/**
 * khugepaged and THP state of one host (KERNEL-SOURCES.md §4), read when asked. A file a
 * kernel lacks is `null`, never an error.
 */
export const ZKhugepaged = z.object({
  /** Whether `<root>/sys/kernel/mm/transparent_hugepage` exists at all. */
  available: z.boolean(),
  /** Writable khugepaged tunables (§4.1) by their file's name, as the kernel prints them. */
  tunables: z.record(z.string(), z.number().nullable()),
  /** khugepaged's own read-only counters (§4.1): 32-bit, approximate, can wrap. */
  counters: z.object({ pagesCollapsed: z.number().nullable(), fullScans: z.number().nullable() }),
  /** Top-level `[selected]` knobs (§4.2). */
  thp: z.object({
    enabled: z.string().nullable(),
    defrag: z.string().nullable(),
    shmemEnabled: z.string().nullable(),
    hpagePmdSize: z.number().nullable(),
  }),
  /** `thp_*` and collapse-related counters and gauges from /proc/vmstat (§4.3). */
  vmstat: z.record(z.string(), z.number()),
  readAt: z.date(),
});
export type TKhugepaged = z.infer<typeof ZKhugepaged>;
