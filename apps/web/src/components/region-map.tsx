"use client";

import { type MouseEvent, useEffect, useMemo, useRef, useState } from "react";
import { outOfSyncRuns, regionColors, regionCounts, renderRegionMap } from "~/lib/region-map";

const labels = ["in sync", "out of sync", "marked (being written)", "recovering"] as const;

/** A canvas strip of a mirror's regions; fast at millions of regions (one putImageData). */
/**
 * `states`: one byte per bucket of `regionsPerBucket` regions, already reduced (worst
 * state first) by the agent; drawn one bucket per pixel or coarser.
 */
export function RegionMap({
  states,
  regionsPerBucket = 1,
  width = 960,
  height = 120,
  regionCount,
  onSelect,
}: {
  states: Uint8Array;
  regionsPerBucket?: number;
  width?: number;
  height?: number;
  /** The mirror's regions (the last bucket may be short); default: buckets × per bucket. */
  regionCount?: number;
  /** A click on a cell, or a run picked from the list: plan a resync of that range. */
  onSelect?: (range: { first: number; last: number }) => void;
}) {
  const total = regionCount ?? states.length * regionsPerBucket;
  const [hover, setHover] = useState<string | null>(null);
  const counts = useMemo(() => regionCounts(states), [states]);
  const runs = useMemo(
    () => outOfSyncRuns(states, regionsPerBucket, total, 20),
    [states, regionsPerBucket, total],
  );
  const canvas = useRef<HTMLCanvasElement>(null);
  const [drawMs, setDrawMs] = useState<number | null>(null);
  // Fewer buckets than pixels: a grid of cols × rows cells with the canvas's aspect ratio,
  // scaled up by CSS, so a small mirror fills the strip instead of one thin line.
  const fits = states.length <= width * height;
  const cols = fits ? Math.max(1, Math.ceil(Math.sqrt((states.length * width) / height))) : width;
  const rows = fits ? Math.max(1, Math.ceil(states.length / cols)) : height;
  useEffect(() => {
    const ctx = canvas.current?.getContext("2d");
    if (!ctx) return;
    const t0 = performance.now();
    const img = renderRegionMap(states, cols, rows);
    ctx.putImageData(new ImageData(img.pixels as Uint8ClampedArray<ArrayBuffer>, cols, rows), 0, 0);
    setDrawMs(performance.now() - t0);
  }, [states, cols, rows]);
  // The cell under the pointer, as a range of regions.
  const cellAt = (e: MouseEvent<HTMLCanvasElement>) => {
    const r = e.currentTarget.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * cols);
    const y = Math.floor(((e.clientY - r.top) / r.height) * rows);
    const perCell = Math.max(1, Math.ceil(states.length / (cols * rows)));
    const bucket = (y * cols + x) * perCell;
    if (bucket >= states.length || x < 0 || y < 0) return null;
    let worst = 0;
    for (let b = bucket; b < Math.min(states.length, bucket + perCell); b++)
      worst = Math.max(worst, states[b]! & 3);
    const first = bucket * regionsPerBucket;
    const last = Math.min(total - 1, (bucket + perCell) * regionsPerBucket - 1);
    return { first, last, state: worst };
  };
  const per = regionsPerBucket * Math.max(1, Math.ceil(states.length / (cols * rows)));
  return (
    <figure className="region-map" data-testid="region-map" data-draw-ms={drawMs ?? ""}>
      <canvas
        ref={canvas}
        width={cols}
        height={rows}
        role="img"
        aria-label={`Region map: ${runs.length === 0 ? "every region in sync" : `${runs.length}${runs.length === 20 ? "+" : ""} run(s) of regions out of sync, being written or recovering, listed below`}`}
        style={{
          width: "100%",
          height,
          imageRendering: "pixelated",
          cursor: onSelect ? "crosshair" : undefined,
        }}
        onMouseMove={(e) => {
          const c = cellAt(e);
          setHover(
            c
              ? `regions ${c.first.toLocaleString("en-US")}–${c.last.toLocaleString("en-US")}: ${labels[c.state]}`
              : null,
          );
        }}
        onMouseLeave={() => setHover(null)}
        onClick={(e) => {
          const c = cellAt(e);
          if (c && onSelect) onSelect({ first: c.first, last: c.last });
        }}
      />
      <p className="muted" data-testid="region-map-hover" style={{ minHeight: "1.4em", margin: 0 }}>
        {hover ??
          (onSelect ? "Point at a cell to see its regions; click it to plan their resync." : "")}
      </p>
      <figcaption>
        {labels.map((label, i) => (
          <span key={label} className="legend">
            <i style={{ background: `rgb(${regionColors[i as 0 | 1 | 2 | 3].join(",")})` }} />{" "}
            {label}
          </span>
        ))}
        <span className="muted"> {per} region(s) per cell; each cell shows its worst region</span>
        <span className="muted" data-testid="region-map-counts">
          {" "}
          · cells: {labels.map((l, i) => `${counts[i]!.toLocaleString("en-US")} ${l}`).join(", ")}
        </span>
      </figcaption>
      {runs.length > 0 && (
        <details data-testid="region-runs">
          <summary>
            Out of sync, being written or recovering: {runs.length}
            {runs.length === 20 ? "+" : ""} run{runs.length === 1 ? "" : "s"}
          </summary>
          <ul>
            {runs.map((r) => (
              <li key={r.first}>
                regions {r.first.toLocaleString("en-US")}–{r.last.toLocaleString("en-US")} (
                {labels[r.state]})
                {onSelect && (
                  <>
                    {" "}
                    <button
                      type="button"
                      onClick={() => onSelect({ first: r.first, last: r.last })}
                    >
                      Plan a resync of these
                    </button>
                  </>
                )}
              </li>
            ))}
          </ul>
        </details>
      )}
    </figure>
  );
}
