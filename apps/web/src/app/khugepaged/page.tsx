import { chartedSeries, defaultChartWindowMs } from "~/lib/khugepaged-charts";
import { Hydrate, prefetch, serverQueries, trpcServer } from "~/trpc/server";
import { KhugepagedView } from "./khugepaged-view";

export const dynamic = "force-dynamic";
export const metadata = { title: "khugepaged — Mirrorplane" };

export default async function KhugepagedPage({
  searchParams,
}: {
  searchParams: Promise<{ node?: string }>;
}) {
  const { node } = await searchParams;
  await prefetch([trpcServer.khugepaged.nodes.queryOptions()]);
  // The node the view opens on (as it chooses: the address's, else the first that reported
  // khugepaged), and its current values and charts, so they are in the HTML. The timeline is
  // left to the browser: its buckets follow the width it is drawn at.
  const nodes = serverQueries().getQueryData(trpcServer.khugepaged.nodes.queryKey());
  const nodeId = node ?? nodes?.find((n) => n.hasKhugepaged)?.id ?? nodes?.[0]?.id ?? null;
  if (nodeId)
    await prefetch([
      trpcServer.khugepaged.current.queryOptions({ nodeId }),
      trpcServer.khugepaged.series.queryOptions({
        nodeId,
        series: chartedSeries,
        windowMs: defaultChartWindowMs,
      }),
    ]);
  return (
    <Hydrate>
      <h1>khugepaged</h1>
      <KhugepagedView initialNodeId={nodeId} />
    </Hydrate>
  );
}
