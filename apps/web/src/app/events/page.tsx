import { EventsView } from "./events-view";

export const dynamic = "force-dynamic";

export default function EventsPage() {
  return (
    <>
      <h1>Events</h1>
      <EventsView />
    </>
  );
}
