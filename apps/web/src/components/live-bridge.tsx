"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { usePathname } from "next/navigation";
import { useState } from "react";
import { useShallow } from "zustand/react/shallow";
import { LiveCache } from "~/lib/live-apply";
import { useLiveStore } from "~/stores/live";
import { useViewStore } from "~/stores/view";
import { useTRPC } from "~/trpc/react";

/**
 * Keeps this tab's server state current from the live stream (lib/live-apply.ts): node
 * freshness and reports, mirror sync state and resync runs patched into the react-query
 * cache where the change carries the values, the queries that show anything else
 * invalidated. Pages poll only while the stream is down (`useFallbackInterval`). The
 * stream's state is shown in the header.
 */
export function LiveBridge() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [cache] = useState(() => new LiveCache(queryClient, trpc));
  const pathname = usePathname();
  const live = useViewStore((s) => s.live);
  const received = useLiveStore((s) => s.received);
  const enabled = live && !pathname.startsWith("/login");
  useSubscription(
    trpc.live.stream.subscriptionOptions(undefined, {
      enabled,
      onData: ({ data }) => {
        received(data.version);
        cache.apply(data);
      },
      onConnectionStateChange: (state) => {
        const set = useLiveStore.getState().setStatus;
        if (state.state === "connecting")
          set(useLiveStore.getState().version === null ? "connecting" : "reconnecting");
        else if (state.state === "idle") set("paused");
      },
    }),
  );
  return null;
}

export function LiveIndicator() {
  const { status, version } = useLiveStore(
    useShallow((s) => ({ status: s.status, version: s.version })),
  );
  const live = useViewStore((s) => s.live);
  const shown = live ? status : "paused";
  const cls = shown === "live" ? "fresh" : shown === "paused" ? "unknown" : "late";
  return (
    <span
      className={`badge ${cls}`}
      data-testid="live-status"
      title={version === null ? "" : `stream version ${version}`}
    >
      {shown}
    </span>
  );
}
