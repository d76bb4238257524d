"use client";

import { useEffect, useRef, useState } from "react";
import { regionColors, renderRegionMap } from "~/lib/region-map";

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
}: {
  states: Uint8Array;
  regionsPerBucket?: number;
  width?: number;
  height?: number;
}) {
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
  return (
    <figure className="region-map" data-testid="region-map" data-draw-ms={drawMs ?? ""}>
      <canvas
        ref={canvas}
        width={cols}
        height={rows}
        style={{ width: "100%", height, imageRendering: "pixelated" }}
      />
      <figcaption>
        {labels.map((label, i) => (
          <span key={label} className="legend">
            <i style={{ background: `rgb(${regionColors[i as 0 | 1 | 2 | 3].join(",")})` }} />{" "}
            {label}
          </span>
        ))}
        <span className="muted">
          {" "}
          {regionsPerBucket * Math.max(1, Math.ceil(states.length / (cols * rows)))} region(s) per
          cell; each cell shows its worst region
        </span>
      </figcaption>
    </figure>
  );
}
