import { defaultEventFilters, eventListInput, eventPageSize } from "~/lib/event-filter";
import { Hydrate, prefetch, trpcServer } from "~/trpc/server";
import { EventsView, type TEventsInitial } from "./events-view";

export const dynamic = "force-dynamic";
export const metadata = { title: "Events — Mirrorplane" };

const windowMs: Record<string, number | null> = {
  "1h": 3_600_000,
  "24h": 86_400_000,
  "7d": 7 * 86_400_000,
  all: null,
};

export default async function EventsPage({
  searchParams,
}: {
  searchParams: Promise<Record<string, string | undefined>>;
}) {
  const q = await searchParams;
  // Every filter is in the URL (written back as it changes): links and reloads keep them.
  const initial: TEventsInitial = {
    // The window's start, fixed here: the browser's list query is the one prefetched below.
    windowStart: Date.now(),
    device: q.device ?? "",
    kind: q.kind ?? "",
    nodeId: q.node ?? "",
    mirror: q.mirror ?? "",
    text: q.text ?? "",
    severity: (q.severity ?? "").split(",").filter(Boolean),
    unacknowledgedOnly: q.unacked === "1",
    ...(q.window !== undefined && q.window in windowMs ? { windowMs: windowMs[q.window]! } : {}),
  };
  const { windowStart, ...filters } = initial;
  await prefetch([
    trpcServer.events.facets.queryOptions(),
    trpcServer.events.incidents.queryOptions({ days: 7, gapMinutes: 10, limit: 20 }),
    // The list's first page (its LCP element): the same input the view builds.
    trpcServer.events.list.infiniteQueryOptions(
      {
        ...eventListInput({ ...defaultEventFilters, ...filters }, windowStart),
        limit: eventPageSize,
      },
      { getNextPageParam: (last) => last.nextCursor ?? undefined },
    ),
  ]);
  return (
    <Hydrate>
      <h1>Events</h1>
      <EventsView initial={initial} />
    </Hydrate>
  );
}
