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
