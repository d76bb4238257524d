import { create } from "zustand";
import { defaultChartWindowMs } from "~/lib/khugepaged-charts";

/** UI state only (STYLE.md §8): what the operator is looking at, never server data. */
export interface ViewState {
  selectedNodeId: string | null;
  windowMs: number;
  live: boolean;
  selectNode(id: string | null): void;
  setWindow(ms: number): void;
  setLive(live: boolean): void;
}

export const useViewStore = create<ViewState>()((set) => ({
  selectedNodeId: null,
  windowMs: defaultChartWindowMs,
  live: true,
  selectNode: (selectedNodeId) => set({ selectedNodeId }),
  setWindow: (windowMs) => set({ windowMs }),
  setLive: (live) => set({ live }),
}));
