import { NodesTable } from "./nodes-table";

export const dynamic = "force-dynamic";

export default function NodesPage() {
  return (
    <>
      <h1>Nodes</h1>
      <NodesTable />
    </>
  );
}
