import { Hydrate, prefetch, trpcServer } from "~/trpc/server";
import { MirrorsTable } from "./mirrors-table";

export const dynamic = "force-dynamic";
export const metadata = { title: "Mirrors — Mirrorplane" };

export default async function MirrorsPage() {
  await prefetch([trpcServer.mirrors.list.queryOptions()]);
  return (
    <Hydrate>
      <h1>Mirrors</h1>
      <MirrorsTable />
    </Hydrate>
  );
}
