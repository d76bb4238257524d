// The events page's filters, shared by the page's server component (which prefetches the
// list's first page, issue 13) and the view in the browser, so both build the same query.

export const eventSeverities = ["critical", "error", "warning", "notice", "info", "debug"] as const;
export type TEventSeverity = (typeof eventSeverities)[number];

export interface TEventFilters {
  windowMs: number | null;
  nodeId: string;
  kind: string;
  severity: string[];
  device: string;
  mirror: string;
  text: string;
  unacknowledgedOnly: boolean;
}

export const defaultEventFilters: TEventFilters = {
  windowMs: 7 * 86_400_000,
  nodeId: "",
  kind: "",
  severity: [],
  device: "",
  mirror: "",
  text: "",
  unacknowledgedOnly: false,
};

/** Rows per page of the list. */
export const eventPageSize = 200;

/**
 * The `events.list` input for these filters; `windowStart` is when the window was chosen
 * (the window's start is fixed then, so every page of the list shares one query key).
 */
export function eventListInput(f: TEventFilters, windowStart: number) {
  return {
    ...(f.windowMs === null ? {} : { from: new Date(windowStart - f.windowMs) }),
    ...(f.nodeId ? { nodeId: f.nodeId } : {}),
    ...(f.kind ? { kind: f.kind } : {}),
    ...(f.severity.length ? { severity: f.severity as TEventSeverity[] } : {}),
    ...(f.device ? { device: f.device } : {}),
    ...(f.mirror ? { mirror: f.mirror } : {}),
    ...(f.text ? { text: f.text } : {}),
    ...(f.unacknowledgedOnly ? { acknowledged: false } : {}),
  };
}
