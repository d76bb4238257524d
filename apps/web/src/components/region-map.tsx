"use client";

import { useEffect, useRef, useState } from "react";
import { regionColors, regionCounts, renderRegionMap } from "~/lib/region-map";

const labels = ["in sync", "out of sync", "marked (being written)", "recovering"] as const;

/** A canvas strip of a mirror's regions; fast at millions of regions (one putImageData). */
export function RegionMap({
  states,
  width = 960,
  height = 120,
}: {
  states: Uint8Array;
  width?: number;
  height?: number;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [drawMs, setDrawMs] = useState<number | null>(null);
  useEffect(() => {
    const ctx = canvas.current?.getContext("2d");
    if (!ctx) return;
    const t0 = performance.now();
    const img = renderRegionMap(states, width, height);
    ctx.putImageData(
      new ImageData(img.pixels as Uint8ClampedArray<ArrayBuffer>, width, height),
      0,
      0,
    );
    setDrawMs(performance.now() - t0);
  }, [states, width, height]);
  const counts = regionCounts(states);
  return (
    <figure className="region-map" data-testid="region-map" data-draw-ms={drawMs ?? ""}>
      <canvas
        ref={canvas}
        width={width}
        height={height}
        style={{ width: "100%", imageRendering: "pixelated" }}
      />
      <figcaption>
        {labels.map((label, i) => (
          <span key={label} className="legend">
            <i style={{ background: `rgb(${regionColors[i as 0 | 1 | 2 | 3].join(",")})` }} />{" "}
            {label}: {counts[i]!.toLocaleString("en-US")}
          </span>
        ))}
        <span className="muted">
          {" "}
          {Math.max(1, Math.ceil(states.length / (width * height)))} region(s) per pixel; each pixel
          shows its worst region
        </span>
      </figcaption>
    </figure>
  );
}
