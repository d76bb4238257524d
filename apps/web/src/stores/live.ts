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
 * How often a query the live stream already keeps current should poll: `ms` as a fallback
 * while the stream is connecting, reconnecting or paused; while it is live not at all (its
 * changes patch or invalidate the query, lib/live-apply.ts), or `whileLive` for what the
 * stream does not carry (say so where it is used).
 */
export function useFallbackInterval(ms: number, whileLive: number | false = false): number | false {
  const status = useLiveStore((s) => s.status);
  return status === "live" ? whileLive : ms;
}
