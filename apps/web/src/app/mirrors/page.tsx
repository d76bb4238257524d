import { MirrorsTable } from "./mirrors-table";

export const dynamic = "force-dynamic";
export const metadata = { title: "Mirrors — Mirrorplane" };

export default function MirrorsPage() {
  return (
    <>
      <h1>Mirrors</h1>
      <MirrorsTable />
    </>
  );
}
