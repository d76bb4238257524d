import { AuditList } from "./audit-list";

export const dynamic = "force-dynamic";
export const metadata = { title: "Audit — Mirrorplane" };

export default function AuditPage() {
  return (
    <>
      <h1>Audit</h1>
      <p className="muted">
        Every change made through Mirrorplane: who, what, with which parameters, and how it ended.
      </p>
      <AuditList />
    </>
  );
}
