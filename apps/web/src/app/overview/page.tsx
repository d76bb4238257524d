import { OverviewView } from "./overview-view";

export const dynamic = "force-dynamic";
export const metadata = { title: "Overview — Mirrorplane" };

export default function OverviewPage() {
  return (
    <>
      <h1>Overview</h1>
      <OverviewView />
    </>
  );
}
