import type { TResyncProgress } from "@mirrorplane/contracts";
import { QueryClient, type QueryKey } from "@tanstack/react-query";
import { createTRPCClient, httpBatchLink } from "@trpc/client";
import type { inferRouterOutputs } from "@trpc/server";
import { createTRPCOptionsProxy } from "@trpc/tanstack-react-query";
import superjson from "superjson";
import { describe, expect, it } from "vitest";
import { blastRadiusCaveats } from "~/server/blast-radius";
import { diffSnapshots, emptySnapshot, type LiveSnapshot } from "~/server/live/live-state";
import { liveMirror as live, liveRun as run } from "~/server/live/live-test-fixtures";
import type { AppRouter } from "~/server/root";
import { LiveCache } from "./live-apply";

// The browser's side of the stream against a real react-query cache and the real tRPC key
// builder: what each change patches in place and which queries it marks for refetching.
// (Nothing is fetched: the queries have no observer, as on a page that does not show them.)

type TOutputs = inferRouterOutputs<AppRouter>;

function listRow(uuid: string, inSync: number): TOutputs["mirrors"]["list"]["mirrors"][number] {
  return {
    uuid,
    name: null,
    regionCount: 100,
    inSync,
    percent: inSync,
    resyncRunning: inSync < 100,
    trend: inSync === 100 ? "in-sync" : "recovering",
    nodes: ["n1"],
    logType: "clustered-core",
    regionBytes: 1024,
    sizeBytes: 102_400,
    logDevice: null,
    legs: null,
    legsNodeId: null,
    legsUnknownReason: null,
  };
}

function detail(
  uuid: string,
  inSync: number,
  progress: TResyncProgress | null,
  atRiskOnLeg: string[] = [],
): TOutputs["mirrors"]["detail"] {
  return {
    redundancy: { outOfSync: 100 - inSync, bytes: (100 - inSync) * 1024, stopped: null },
    uuid,
    name: null,
    regionCount: 100,
    inSync,
    nodes: ["n1"],
    progress,
    logType: "clustered-core",
    regionBytes: 1024,
    sizeBytes: 102_400,
    logDevice: null,
    // (Cast: fields this test does not look at may be added to a holder's view.)
    views: [
      {
        nodeId: "n1",
        reason: null,
        table: null,
        dmUuid: null,
        legs: [
          {
            device: "leg0",
            label: null,
            majorMinor: null,
            health: "A",
            primary: true,
            source: true,
            underlying: [],
            blastRadius: atRiskOnLeg.map((u) => ({
              uuid: u,
              name: null,
              reason: "only-copy-of-out-of-sync-regions" as const,
              regionsAtRisk: 1,
              bytesAtRisk: 1024,
              legs: [0],
              detail: "",
            })),
          },
        ],
      },
    ] as TOutputs["mirrors"]["detail"]["views"],
    blastRadiusCaveat: blastRadiusCaveats.device,
  };
}

function setup(state: LiveSnapshot) {
  const queryClient = new QueryClient();
  const trpc = createTRPCOptionsProxy<AppRouter>({
    client: createTRPCClient<AppRouter>({
      links: [httpBatchLink({ url: "http://127.0.0.1:9/unused", transformer: superjson })],
    }),
    queryClient,
  });
  const cache = new LiveCache(queryClient, trpc);
  cache.apply({ version: 1, kind: "snapshot", snapshot: state });
  const invalidated = (key: QueryKey) => queryClient.getQueryState(key)?.isInvalidated ?? null;
  return { queryClient, trpc, cache, invalidated };
}

describe("live stream changes applied to the query cache", () => {
  it("a resync's progress is patched into the list, the mirror page and the overview", () => {
    const before: LiveSnapshot = {
      ...emptySnapshot,
      mirrors: { m1: live(40, run()), m2: live(100, null) },
    };
    const { queryClient, trpc, cache, invalidated } = setup(before);
    const listKey = trpc.mirrors.list.queryKey();
    queryClient.setQueryData(listKey, {
      mirrors: [listRow("m1", 40), listRow("m2", 100)],
      unreachable: [],
    });
    const m1Key = trpc.mirrors.detail.queryKey({ uuid: "m1" });
    const m2Key = trpc.mirrors.detail.queryKey({ uuid: "m2" });
    const m3Key = trpc.mirrors.detail.queryKey({ uuid: "m3" });
    queryClient.setQueryData(m1Key, detail("m1", 40, run()));
    queryClient.setQueryData(m2Key, detail("m2", 100, null, ["m1"])); // shares a device with m1
    queryClient.setQueryData(m3Key, detail("m3", 100, null));
    const mapKey = trpc.mirrors.regionMap.queryKey({ uuid: "m1" });
    queryClient.setQueryData(mapKey, { buckets: "", regionsPerBucket: 1, regionCount: 100 });
    const summaryKey = trpc.overview.summary.queryKey();
    const summary = {
      mirrors: {
        total: 2,
        list: [
          { uuid: "m1", percent: 40, trend: "recovering", resyncRunning: true },
          { uuid: "m2", percent: 100, trend: "in-sync", resyncRunning: false },
        ],
      },
      nodes: [],
    } as unknown as TOutputs["overview"]["summary"];
    queryClient.setQueryData(summaryKey, summary);

    const after: LiveSnapshot = {
      ...before,
      mirrors: { ...before.mirrors, m1: live(55, run({ inSync: 55, percent: 55, rate: 12 })) },
    };
    cache.apply({ version: 2, kind: "changes", changes: diffSnapshots(before, after) });

    const list = queryClient.getQueryData(listKey)!;
    expect(list.mirrors[0]).toMatchObject({
      uuid: "m1",
      inSync: 55,
      percent: 55,
      trend: "recovering",
    });
    expect(list.mirrors[1]).toEqual(listRow("m2", 100));
    expect(invalidated(listKey)).toBe(false); // patched: no request
    const m1 = queryClient.getQueryData(m1Key)!;
    expect(m1.inSync).toBe(55);
    expect(m1.progress).toMatchObject({ inSync: 55, rate: 12 });
    expect(m1.redundancy).toEqual({ outOfSync: 45, bytes: 45 * 1024, stopped: null });
    // The pages whose legs' blast radius names m1 are refetched; a page that does not is not.
    expect(invalidated(m1Key)).toBe(true);
    expect(invalidated(m2Key)).toBe(true);
    expect(invalidated(m3Key)).toBe(false);
    expect(invalidated(mapKey)).toBe(true);
    // The overview's row took the new percentage; the same trend: no refetch.
    const s = queryClient.getQueryData(summaryKey)!;
    expect(s.mirrors.list[0]!.percent).toBe(55);
    expect(invalidated(summaryKey)).toBe(false);
    expect(cache.state?.mirrors.m1?.sync.inSync).toBe(55);
  });

  it("a cancelled run leaves the mirror without redundancy, and refetches what is derived", () => {
    const before: LiveSnapshot = { ...emptySnapshot, mirrors: { m1: live(40, run()) } };
    const { queryClient, trpc, cache, invalidated } = setup(before);
    const m1Key = trpc.mirrors.detail.queryKey({ uuid: "m1" });
    queryClient.setQueryData(m1Key, detail("m1", 40, run()));
    const historyKey = trpc.mirrors.history.queryKey({ uuid: "m1" });
    queryClient.setQueryData(historyKey, []);
    const summaryKey = trpc.overview.summary.queryKey();
    queryClient.setQueryData(summaryKey, {
      mirrors: {
        total: 1,
        list: [{ uuid: "m1", percent: 40, trend: "recovering", resyncRunning: true }],
      },
      nodes: [],
    } as unknown as TOutputs["overview"]["summary"]);
    const cancelled = run({ state: "cancelled", endedAt: 5_000 });
    const after: LiveSnapshot = { ...before, mirrors: { m1: live(40, cancelled) } };
    cache.apply({ version: 2, kind: "changes", changes: diffSnapshots(before, after) });
    expect(queryClient.getQueryData(m1Key)!.redundancy.stopped).toEqual({
      reason: "cancelled",
      resyncId: "r1",
      at: 5_000,
    });
    expect(queryClient.getQueryData(m1Key)!.progress?.state).toBe("cancelled");
    // The overview's alarms and counts are the server's: a run that ended refetches it.
    expect(invalidated(summaryKey)).toBe(true);
    // The same run (same id): its history row is refetched on the run's events, not here.
    expect(invalidated(historyKey)).toBe(false);
    const again: LiveSnapshot = { ...after, mirrors: { m1: live(40, run({ id: "r2" })) } };
    cache.apply({ version: 3, kind: "changes", changes: diffSnapshots(after, again) });
    expect(invalidated(historyKey)).toBe(true);
  });

  it("facts not carried refetch what shows them; a mirror new to the list refetches the list", () => {
    const before: LiveSnapshot = { ...emptySnapshot, mirrors: { m1: live(100, null, "a") } };
    const { queryClient, trpc, cache, invalidated } = setup(before);
    const listKey = trpc.mirrors.list.queryKey();
    queryClient.setQueryData(listKey, { mirrors: [listRow("m1", 100)], unreachable: [] });
    const m1Key = trpc.mirrors.detail.queryKey({ uuid: "m1" });
    queryClient.setQueryData(m1Key, detail("m1", 100, null));
    const leg = { ...before, mirrors: { m1: live(100, null, "b") } };
    cache.apply({ version: 2, kind: "changes", changes: diffSnapshots(before, leg) });
    expect(invalidated(listKey)).toBe(true);
    expect(invalidated(m1Key)).toBe(true);

    const fresh = setup(before);
    const key = fresh.trpc.mirrors.list.queryKey();
    fresh.queryClient.setQueryData(key, { mirrors: [listRow("m1", 100)], unreachable: [] });
    const added = { ...before, mirrors: { ...before.mirrors, m9: live(0, null) } };
    fresh.cache.apply({ version: 2, kind: "changes", changes: diffSnapshots(before, added) });
    expect(fresh.invalidated(key)).toBe(true);
    const gone = { ...before, mirrors: {} };
    fresh.queryClient.setQueryData(key, { mirrors: [listRow("m1", 100)], unreachable: [] });
    fresh.cache.apply({ version: 3, kind: "changes", changes: diffSnapshots(added, gone) });
    expect(fresh.queryClient.getQueryData(key)!.mirrors).toEqual([]);
  });

  it("a node's report patches its age and refetches only that node's charts", () => {
    const before: LiveSnapshot = {
      ...emptySnapshot,
      nodes: { n1: { hostname: "h1", freshness: "fresh", lastSeenAt: 1_000 } },
    };
    const { queryClient, trpc, cache, invalidated } = setup(before);
    const nodesKey = trpc.nodes.list.queryKey();
    const row = {
      id: "n1",
      hostname: "h1",
      apiUrl: "http://x",
      agentVersion: "0",
      kernelRelease: null,
      sampleIntervalMs: 5_000,
      startedAt: new Date(0),
      lastSeenAt: new Date(1_000),
      freshness: "fresh" as const,
    };
    queryClient.setQueryData(nodesKey, [row, { ...row, id: "n2" }]);
    const series = (nodeId: string) =>
      trpc.khugepaged.series.queryKey({ nodeId, series: ["a"], windowMs: 60_000 });
    const points = { from: new Date(0), to: new Date(1), series: {} };
    queryClient.setQueryData(series("n1"), points);
    queryClient.setQueryData(series("n2"), points);
    const after: LiveSnapshot = {
      ...before,
      nodes: { n1: { hostname: "h1", freshness: "fresh", lastSeenAt: 6_000 } },
    };
    cache.apply({ version: 2, kind: "changes", changes: diffSnapshots(before, after) });
    expect(queryClient.getQueryData(nodesKey)!.map((n) => n.lastSeenAt.getTime())).toEqual([
      6_000, 1_000,
    ]);
    expect(invalidated(nodesKey)).toBe(false);
    expect(invalidated(series("n1"))).toBe(true);
    expect(invalidated(series("n2"))).toBe(false);
  });

  it("the first snapshot refetches nothing; a snapshot after a gap refetches what the stream keeps", () => {
    const { queryClient, trpc, cache, invalidated } = setup(emptySnapshot);
    const listKey = trpc.mirrors.list.queryKey();
    queryClient.setQueryData(listKey, { mirrors: [], unreachable: [] });
    const eventsKey = trpc.events.list.infiniteQueryKey({ limit: 200 });
    queryClient.setQueryData(eventsKey, { pages: [], pageParams: [] });
    expect(invalidated(listKey)).toBe(false);
    cache.apply({ version: 9, kind: "snapshot", snapshot: emptySnapshot });
    expect(invalidated(listKey)).toBe(true);
    expect(invalidated(eventsKey)).toBe(true);
  });
});
