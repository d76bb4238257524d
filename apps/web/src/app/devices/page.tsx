import { DevicesView } from "./devices-view";

export const dynamic = "force-dynamic";

export default function DevicesPage() {
  return (
    <>
      <h1>Memory and devices</h1>
      <DevicesView />
    </>
  );
}
