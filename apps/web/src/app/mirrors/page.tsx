import { MirrorsTable } from "./mirrors-table";

export const dynamic = "force-dynamic";

export default function MirrorsPage() {
  return (
    <>
      <h1>Mirrors</h1>
      <MirrorsTable />
    </>
  );
}
