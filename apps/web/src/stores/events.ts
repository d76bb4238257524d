import { create } from "zustand";

/** The events view's filters (UI state only; the rows live in the query cache). */
export interface EventFiltersState {
  windowMs: number | null;
  nodeId: string;
  kind: string;
  severity: string[];
  device: string;
  mirror: string;
  text: string;
  unacknowledgedOnly: boolean;
  set(patch: Partial<Omit<EventFiltersState, "set" | "reset">>): void;
  reset(): void;
}

const initial = {
  windowMs: 7 * 86_400_000,
  nodeId: "",
  kind: "",
  severity: [] as string[],
  device: "",
  mirror: "",
  text: "",
  unacknowledgedOnly: false,
};

export const useEventFilters = create<EventFiltersState>()((set) => ({
  ...initial,
  set: (patch) => set(patch),
  reset: () => set(initial),
}));
