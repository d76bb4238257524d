import { Hydrate, prefetch, trpcServer } from "~/trpc/server";
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
  return (
    <Hydrate>
      <h1>khugepaged</h1>
      <KhugepagedView initialNodeId={node ?? null} />
    </Hydrate>
  );
}
