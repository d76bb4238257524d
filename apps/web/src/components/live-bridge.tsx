"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useSubscription } from "@trpc/tanstack-react-query";
import { usePathname } from "next/navigation";
import { useShallow } from "zustand/react/shallow";
import { useLiveStore } from "~/stores/live";
import { useViewStore } from "~/stores/view";
import { useTRPC } from "~/trpc/react";

/**
 * Keeps this tab's server state current from the live stream: changes are applied to the
 * react-query cache (node freshness patched in place; event and audit lists, membership
 * and the devices summary refetched when something new arrived). The stream's state is
 * shown in the header.
 */
export function LiveBridge() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const pathname = usePathname();
  const live = useViewStore((s) => s.live);
  const received = useLiveStore((s) => s.received);
  const enabled = live && !pathname.startsWith("/login");
  useSubscription(
    trpc.live.stream.subscriptionOptions(undefined, {
      enabled,
      onData: ({ data }) => {
        received(data.version);
        if (data.kind === "snapshot") {
          void queryClient.invalidateQueries({ queryKey: trpc.nodes.list.queryKey() });
          return;
        }
        for (const change of data.changes) {
          if (change.type === "node") {
            void queryClient.invalidateQueries({ queryKey: trpc.nodes.list.queryKey() });
          } else if (change.type === "audit") {
            void queryClient.invalidateQueries({ queryKey: trpc.audit.list.infiniteQueryKey() });
          } else {
            void queryClient.invalidateQueries({
              predicate: (q) => JSON.stringify(q.queryKey).includes("events"),
            });
            // Membership changes and device failures arrive as events too: the nodes page's
            // membership and the devices page's summary need not wait for their next poll.
            void queryClient.invalidateQueries({ queryKey: trpc.nodes.membership.queryKey() });
            void queryClient.invalidateQueries({ queryKey: trpc.devices.summary.queryKey() });
          }
        }
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
