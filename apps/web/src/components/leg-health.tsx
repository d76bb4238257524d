import type { CSSProperties } from "react";
import { shortDevice } from "~/lib/bytes";

// dm-raid1's health character per leg (KERNEL-SOURCES.md §3.3), shown as the character
// itself (text, never colour alone) on a coloured chip, with its meaning on hover and for
// screen readers.

export const legHealthMeaning: Record<string, string> = {
  A: "alive: no error since the table was loaded",
  F: "flush failed",
  D: "dead: a write failed",
  S: "sync failure: a resync copy to it failed",
  R: "read failure",
  U: "unclassified error",
};

const tone: Record<string, { color: string; background: string }> = {
  ok: { color: "var(--ok)", background: "rgba(63, 185, 80, 0.15)" },
  bad: { color: "var(--bad)", background: "rgba(248, 81, 73, 0.15)" },
  unknown: { color: "var(--warn)", background: "rgba(210, 153, 34, 0.15)" },
};

const chip: CSSProperties = {
  display: "inline-block",
  minWidth: 18,
  padding: "0 5px",
  borderRadius: 4,
  fontFamily: "ui-monospace, monospace",
  fontWeight: 700,
  textAlign: "center",
};

/** Read by screen readers, not shown (the title shows it on hover). */
const visuallyHidden: CSSProperties = {
  position: "absolute",
  width: 1,
  height: 1,
  overflow: "hidden",
  clip: "rect(0 0 0 0)",
  whiteSpace: "nowrap",
};

export function LegHealthChar({ health }: { health: string }) {
  const t = health === "A" ? tone.ok : health === "U" ? tone.unknown : tone.bad;
  const meaning = legHealthMeaning[health] ?? "unknown health character";
  return (
    <span
      data-testid="leg-health"
      data-health={health}
      title={`${health}: ${meaning}`}
      style={{ ...chip, ...t }}
    >
      {health}
      <span style={visuallyHidden}> ({meaning})</span>
    </span>
  );
}

export interface TLegSummary {
  device: string;
  label: string | null;
  health: string;
  source: boolean;
}

/** A mirror's legs in table order, one a line: health character, device, the resync source. */
export function LegList({ legs }: { legs: readonly TLegSummary[] }) {
  return (
    <span data-testid="legs" style={{ display: "inline-flex", flexDirection: "column", gap: 2 }}>
      {legs.map((leg, i) => (
        <span
          // Legs have no identity but their position in the table.
          // biome-ignore lint/suspicious/noArrayIndexKey: the position is the identity
          key={i}
          title={[leg.device, leg.label].filter(Boolean).join(" — ")}
          style={{ whiteSpace: "nowrap" }}
        >
          <LegHealthChar health={leg.health} /> {shortDevice(leg.device)}
          {leg.source ? <span className="muted"> (source)</span> : null}
        </span>
      ))}
    </span>
  );
}
