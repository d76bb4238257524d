import { create } from "zustand";
import { defaultEventFilters, type TEventFilters } from "~/lib/event-filter";

/** The events view's filters (UI state only; the rows live in the query cache). */
export interface EventFiltersState extends TEventFilters {
  set(patch: Partial<TEventFilters>): void;
  reset(): void;
}

const initial = defaultEventFilters;

export const useEventFilters = create<EventFiltersState>()((set) => ({
  ...initial,
  set: (patch) => set(patch),
  reset: () => set(initial),
}));
