import { Hydrate, prefetch, trpcServer } from "~/trpc/server";
import { MirrorDetail } from "./mirror-detail";

export const dynamic = "force-dynamic";

export async function generateMetadata({ params }: { params: Promise<{ uuid: string }> }) {
  return { title: `Mirror ${decodeURIComponent((await params).uuid)} — Mirrorplane` };
}

export default async function MirrorPage({
  params,
  searchParams,
}: {
  params: Promise<{ uuid: string }>;
  searchParams: Promise<{ first?: string; last?: string; resync?: string }>;
}) {
  const { uuid } = await params;
  const { first, last, resync } = await searchParams;
  const toInt = (v?: string) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
  // A link from a memory failure ("resync the regions it touched") opens with its range planned.
  const initialRange =
    toInt(first) !== undefined && toInt(last) !== undefined
      ? { first: toInt(first)!, last: toInt(last)! }
      : null;
  const mirror = decodeURIComponent(uuid);
  await prefetch([
    trpcServer.mirrors.detail.queryOptions({ uuid: mirror }),
    trpcServer.mirrors.regionMap.queryOptions({ uuid: mirror }),
    trpcServer.mirrors.history.queryOptions({ uuid: mirror }),
  ]);
  return (
    <Hydrate>
      <MirrorDetail
        uuid={mirror}
        initialRange={initialRange}
        initialOutOfSyncOnly={resync === "out-of-sync"}
      />
    </Hydrate>
  );
}
