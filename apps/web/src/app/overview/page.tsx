import { Hydrate, prefetch, trpcServer } from "~/trpc/server";
import { OverviewView } from "./overview-view";

export const dynamic = "force-dynamic";
export const metadata = { title: "Overview — Mirrorplane" };

export default async function OverviewPage() {
  // The first screen comes with its data (trpc/server.tsx).
  await prefetch([
    trpcServer.overview.summary.queryOptions(),
    trpcServer.alerts.status.queryOptions(),
  ]);
  return (
    <Hydrate>
      <h1>Overview</h1>
      <OverviewView />
    </Hydrate>
  );
}
