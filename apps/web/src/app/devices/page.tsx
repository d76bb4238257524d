import { DevicesView } from "./devices-view";

export const dynamic = "force-dynamic";
export const metadata = { title: "Memory and devices — Mirrorplane" };

export default function DevicesPage() {
  return (
    <>
      <h1>Memory and devices</h1>
      <DevicesView />
    </>
  );
}
