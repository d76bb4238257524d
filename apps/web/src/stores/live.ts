import { create } from "zustand";

/** The live stream's connection state (UI state: shown on every page). */
export type TLiveStatus = "connecting" | "live" | "reconnecting" | "paused" | "signed-out";

export interface LiveState {
  status: TLiveStatus;
  version: number | null;
  lastMessageAt: number | null;
  setStatus(status: TLiveStatus): void;
  received(version: number): void;
}

export const useLiveStore = create<LiveState>()((set) => ({
  status: "connecting",
  version: null,
  lastMessageAt: null,
  setStatus: (status) => set({ status }),
  received: (version) => set({ version, lastMessageAt: Date.now(), status: "live" }),
}));

/**
 * How often a query the live stream already keeps current should poll: not at all while
 * the stream is live (its changes invalidate the query, live-bridge.tsx), `ms` as a fallback
 * while it is connecting, reconnecting or paused.
 */
export function useFallbackInterval(ms: number): number | false {
  const status = useLiveStore((s) => s.status);
  return status === "live" ? false : ms;
}
