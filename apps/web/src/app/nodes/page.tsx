import { Membership } from "./membership";
import { NodesTable } from "./nodes-table";

export const dynamic = "force-dynamic";
export const metadata = { title: "Nodes — Mirrorplane" };

export default function NodesPage() {
  return (
    <>
      <h1>Nodes</h1>
      <NodesTable />
      <Membership />
    </>
  );
}
