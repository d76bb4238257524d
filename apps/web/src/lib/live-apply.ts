import type { QueryClient, QueryKey } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import type { TRPCOptionsProxy } from "@trpc/tanstack-react-query";
import {
  applyChanges,
  type LiveChange,
  type LiveMessage,
  type LiveMirror,
  type LiveSnapshot,
} from "~/server/live/live-state";
import type { AppRouter } from "~/server/root";

// The browser's side of the live stream (issue 13: one live channel instead of polling):
// each change set is applied to the react-query cache. Where a change carries every value
// a query shows, the cached data is patched in place (no request); otherwise only the
// queries that show what changed are invalidated (refetched if on screen, never while a
// fetch of theirs is still running).

type TOutputs = inferRouterOutputs<AppRouter>;
type TMirrorList = TOutputs["mirrors"]["list"];
type TMirrorDetail = TOutputs["mirrors"]["detail"];
type TSummary = TOutputs["overview"]["summary"];
type TNodeList = TOutputs["nodes"]["list"];

const percentOf = (m: { inSync: number; regionCount: number }) =>
  m.regionCount ? (100 * m.inSync) / m.regionCount : 100;

/** The mirror list's row as the live state has it (the fields the list shows that move). */
export function patchMirrorList(
  data: TMirrorList,
  uuid: string,
  mirror: LiveMirror | null,
): TMirrorList | null {
  const row = data.mirrors.find((m) => m.uuid === uuid);
  if (!mirror) return row ? { ...data, mirrors: data.mirrors.filter((m) => m !== row) } : data;
  // A mirror the list does not have yet: its facts are not carried, so it is refetched.
  if (!row) return null;
  const s = mirror.sync;
  return {
    ...data,
    mirrors: data.mirrors.map((m) =>
      m === row
        ? {
            ...m,
            inSync: s.inSync,
            regionCount: s.regionCount,
            percent: percentOf(s),
            resyncRunning: s.resyncId !== null,
            trend: s.trend,
          }
        : m,
    ),
  };
}

/**
 * A mirror's page as the live state has it: its sync numbers, its latest run, and what is
 * without redundancy (server/domain/mirrors.ts `mirrorDetail`, sync-observer.ts
 * `recoveryStoppedOf`). The legs' blast radius is derived on the server: not patched.
 */
export function patchMirrorDetail(data: TMirrorDetail, mirror: LiveMirror): TMirrorDetail {
  const { sync, resync } = mirror;
  const outOfSync = sync.regionCount - sync.inSync;
  const stoppedState = resync?.state === "cancelled" || resync?.state === "failed";
  const stopped =
    outOfSync > 0 && sync.resyncId === null && resync && stoppedState
      ? {
          reason: resync.state as "cancelled" | "failed",
          resyncId: resync.id,
          at: resync.endedAt ?? data.redundancy.stopped?.at ?? Date.now(),
        }
      : null;
  return {
    ...data,
    inSync: sync.inSync,
    regionCount: sync.regionCount,
    progress: resync,
    redundancy: {
      outOfSync,
      bytes: data.regionBytes === null ? null : outOfSync * data.regionBytes,
      stopped,
    },
  };
}

/** Whether a mirror page's derived parts (its legs' blast radius) name `uuid`. */
function detailMentions(data: TMirrorDetail, uuid: string): boolean {
  return (
    data.uuid === uuid ||
    data.views.some((v) => v.legs?.some((leg) => leg.blastRadius.some((b) => b.uuid === uuid)))
  );
}

/**
 * The overview's mirror row with its new percentage, or null when more than the percentage
 * changed (trend, a resync started or ended: the counts and the alarms are the server's).
 */
export function patchSummary(data: TSummary, uuid: string, mirror: LiveMirror): TSummary | null {
  const row = data.mirrors.list.find((m) => m.uuid === uuid);
  if (!row) return data.mirrors.total > data.mirrors.list.length ? data : null;
  if (row.trend !== mirror.sync.trend || row.resyncRunning !== (mirror.sync.resyncId !== null))
    return null;
  return {
    ...data,
    mirrors: {
      ...data.mirrors,
      list: data.mirrors.list.map((m) =>
        m === row ? { ...m, percent: percentOf(mirror.sync) } : m,
      ),
    },
  };
}

/** Applies live messages to one query cache; keeps the stream's state it has seen. */
export class LiveCache {
  #state: LiveSnapshot | null = null;

  constructor(
    private readonly queryClient: QueryClient,
    private readonly trpc: TRPCOptionsProxy<AppRouter>,
  ) {}

  /** The stream's state as this tab knows it (null before the first message). */
  get state(): LiveSnapshot | null {
    return this.#state;
  }

  apply(message: LiveMessage): void {
    if (message.kind === "snapshot") {
      const first = this.#state === null;
      this.#state = message.snapshot;
      // The first snapshot comes moments after the page was rendered with its data; a later
      // one means changes were missed (a gap): everything the stream keeps is refetched.
      if (!first) this.#invalidateAll();
      return;
    }
    const before = this.#state ?? {
      nodes: {},
      mirrors: {},
      unreachable: [],
      latestEventId: null,
      latestAuditId: null,
    };
    this.#state = applyChanges(before, message.changes);
    for (const change of message.changes) this.#applyChange(change, before, this.#state);
  }

  #invalidate(queryKey: QueryKey, predicate?: (data: unknown) => boolean): void {
    void this.queryClient.invalidateQueries(
      {
        queryKey,
        ...(predicate ? { predicate: (q) => predicate(q.state.data) } : {}),
      },
      { cancelRefetch: false },
    );
  }

  #invalidateAll(): void {
    const t = this.trpc;
    for (const key of [
      t.nodes.list.queryKey(),
      t.nodes.membership.queryKey(),
      t.overview.summary.queryKey(),
      t.mirrors.list.queryKey(),
      t.mirrors.detail.queryKey(),
      t.mirrors.regionMap.queryKey(),
      t.mirrors.history.queryKey(),
      t.mirrors.blastRadius.queryKey(),
      t.events.pathKey(),
      t.audit.list.pathKey(),
      t.khugepaged.pathKey(),
      t.devices.summary.queryKey(),
      t.devices.mirrorLegs.queryKey(),
      t.devices.disks.queryKey(),
    ])
      this.#invalidate(key);
  }

  #applyChange(change: LiveChange, before: LiveSnapshot, after: LiveSnapshot): void {
    const t = this.trpc;
    const qc = this.queryClient;
    switch (change.type) {
      case "node":
        this.#invalidate(t.nodes.list.queryKey());
        this.#invalidate(t.nodes.membership.queryKey());
        this.#invalidate(t.overview.summary.queryKey());
        this.#invalidate(t.khugepaged.nodes.queryKey());
        return;
      case "report": {
        // The node's new samples are stored: what charts them is refetched; its age is patched.
        const at = new Date(change.lastSeenAt);
        qc.setQueriesData<TNodeList>({ queryKey: t.nodes.list.queryKey() }, (d) =>
          d?.map((n) => (n.id === change.id ? { ...n, lastSeenAt: at } : n)),
        );
        qc.setQueriesData<TSummary>({ queryKey: t.overview.summary.queryKey() }, (d) =>
          d
            ? {
                ...d,
                nodes: d.nodes.map((n) => (n.id === change.id ? { ...n, lastSeenAt: at } : n)),
              }
            : d,
        );
        for (const key of [
          t.khugepaged.current.queryKey({ nodeId: change.id }),
          t.khugepaged.series.queryKey({ nodeId: change.id }),
          t.khugepaged.timeline.queryKey({ nodeId: change.id }),
        ])
          this.#invalidate(key);
        return;
      }
      case "mirror-sync":
      case "mirror-resync": {
        const uuid = change.uuid;
        const mirror = after.mirrors[uuid]!;
        const was = before.mirrors[uuid];
        this.#patchList(uuid, mirror);
        qc.setQueriesData<TMirrorDetail>({ queryKey: t.mirrors.detail.queryKey({ uuid }) }, (d) =>
          d ? patchMirrorDetail(d, mirror) : d,
        );
        // The region map's cells are not carried.
        this.#invalidate(t.mirrors.regionMap.queryKey({ uuid }));
        // A mirror page's legs name the regions their device's failure would take: any page
        // naming this mirror, and every page when it starts or stops being out of sync.
        const crossed =
          !was ||
          was.sync.inSync < was.sync.regionCount !== mirror.sync.inSync < mirror.sync.regionCount;
        this.#invalidate(
          t.mirrors.detail.queryKey(),
          (d) => crossed || (d !== undefined && detailMentions(d as TMirrorDetail, uuid)),
        );
        if (change.type === "mirror-resync" && change.value?.id !== was?.resync?.id)
          this.#invalidate(t.mirrors.history.queryKey({ uuid }));
        let refetchSummary =
          change.type === "mirror-resync" && change.value?.state !== was?.resync?.state;
        qc.setQueriesData<TSummary>({ queryKey: t.overview.summary.queryKey() }, (d) => {
          if (!d) return d;
          const patched = patchSummary(d, uuid, mirror);
          if (!patched) refetchSummary = true;
          return patched ?? d;
        });
        if (refetchSummary) this.#invalidate(t.overview.summary.queryKey());
        return;
      }
      case "mirror-facts": {
        // Holders, legs and their health, names, sizes: not carried. A mirror this tab first
        // hears of with its facts was on the page when it was rendered, or is new to the list.
        const known = before.mirrors[change.uuid];
        if (!known) {
          this.#patchList(change.uuid, after.mirrors[change.uuid]!);
          return;
        }
        this.#invalidateFacts();
        return;
      }
      case "mirror-gone":
        this.#patchList(change.uuid, null);
        this.#invalidateFacts();
        return;
      case "unreachable":
        this.#invalidate(t.mirrors.list.queryKey());
        this.#invalidate(t.overview.summary.queryKey());
        return;
      case "events":
        // Lists and counts of events, what is derived from them (resync history, the
        // timeline's resync rate, the overview's counts), and what arrives as events
        // (membership changes, device failures).
        this.#invalidate(t.events.pathKey());
        this.#invalidate(t.mirrors.history.queryKey());
        this.#invalidate(t.khugepaged.timeline.queryKey());
        this.#invalidate(t.overview.summary.queryKey());
        this.#invalidate(t.nodes.membership.queryKey());
        this.#invalidate(t.devices.summary.queryKey());
        // A disk's SMART turning bad arrives as a device_failure event.
        this.#invalidate(t.devices.disks.queryKey());
        return;
      case "audit":
        this.#invalidate(t.audit.list.pathKey());
        this.#invalidate(t.overview.summary.queryKey());
        return;
    }
  }

  #patchList(uuid: string, mirror: LiveMirror | null): void {
    const t = this.trpc;
    let missing = false;
    this.queryClient.setQueriesData<TMirrorList>({ queryKey: t.mirrors.list.queryKey() }, (d) => {
      if (!d) return d;
      const patched = patchMirrorList(d, uuid, mirror);
      if (!patched) missing = true;
      return patched ?? d;
    });
    if (missing) this.#invalidate(t.mirrors.list.queryKey());
  }

  /** What shows the facts the stream does not carry. */
  #invalidateFacts(): void {
    const t = this.trpc;
    this.#invalidate(t.mirrors.list.queryKey());
    this.#invalidate(t.mirrors.detail.queryKey());
    this.#invalidate(t.mirrors.blastRadius.queryKey());
    this.#invalidate(t.overview.summary.queryKey());
    this.#invalidate(t.devices.summary.queryKey());
    this.#invalidate(t.devices.mirrorLegs.queryKey());
  }
}
