import { create } from "zustand";

/** The mirrors list's sort and filter (UI state only; the rows live in the query cache). */
export type TMirrorSort =
  | "mirror"
  | "size"
  | "regionSize"
  | "logType"
  | "regions"
  | "inSync"
  | "legs";

export interface MirrorsViewState {
  /** null: the server's order (least in sync first). */
  sort: TMirrorSort | null;
  descending: boolean;
  filter: string;
  /** Click on a column: sort by it, then reverse, then back to the server's order. */
  toggleSort(column: TMirrorSort): void;
  setFilter(filter: string): void;
}

export const useMirrorsView = create<MirrorsViewState>()((set) => ({
  sort: null,
  descending: false,
  filter: "",
  toggleSort: (column) =>
    set((s) =>
      s.sort !== column
        ? { sort: column, descending: false }
        : s.descending
          ? { sort: null, descending: false }
          : { descending: true },
    ),
  setFilter: (filter) => set({ filter }),
}));
