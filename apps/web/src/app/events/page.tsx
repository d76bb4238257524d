import { EventsView } from "./events-view";

export const dynamic = "force-dynamic";

export default async function EventsPage({
  searchParams,
}: {
  searchParams: Promise<{ device?: string; kind?: string; node?: string; mirror?: string }>;
}) {
  const { device, kind, node, mirror } = await searchParams;
  return (
    <>
      <h1>Events</h1>
      <EventsView
        initial={{
          device: device ?? "",
          kind: kind ?? "",
          nodeId: node ?? "",
          mirror: mirror ?? "",
        }}
      />
    </>
  );
}
