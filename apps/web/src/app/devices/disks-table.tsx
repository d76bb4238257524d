"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import type { inferRouterOutputs } from "@trpc/server";
import { useState } from "react";
import { DateTime } from "~/components/date-time";
import { FreshnessBadge } from "~/components/freshness-badge";
import { LegHealthChar } from "~/components/leg-health";
import { formatBytes } from "~/lib/bytes";
import { errorMessage } from "~/lib/errors";
import type { AppRouter } from "~/server/root";
import { useTRPC } from "~/trpc/react";

// Each node's disks with SMART (issue 13): what the agent reads from sysfs, the mirror legs
// on each disk, and SMART health as smartctl last reported it, with when.

type TNodeDisks = inferRouterOutputs<AppRouter>["devices"]["disks"]["nodes"][number];
type TDiskRow = NonNullable<TNodeDisks["inventory"]>["disks"][number];

const kindLabel: Record<string, string> = {
  nvme: "NVMe",
  sata: "SATA",
  sas: "SAS",
  scsi: "SCSI",
  usb: "USB",
  virtio: "virtio",
  mmc: "MMC",
  loop: "loop",
  dm: "dm",
  md: "md",
  pmem: "pmem",
  other: "other",
};

export function SmartHealth({ smart }: { smart: TDiskRow["smart"] }) {
  const reasons = smart.reasons.join("; ");
  switch (smart.status) {
    case "passed":
      return <span className="badge fresh">passed</span>;
    case "warning":
      return (
        <>
          <span className="badge late">passed, with warnings</span>{" "}
          <span className="muted">{reasons}</span>
        </>
      );
    case "failing":
      return (
        <>
          <span className="badge unknown error" style={{ fontWeight: 700 }}>
            FAILING
          </span>{" "}
          <span className="error">{reasons}</span>
        </>
      );
    case "unavailable":
      return <span className="muted">SMART unavailable: {reasons || "no reason given"}</span>;
    default:
      return <span className="muted">not read yet</span>;
  }
}

function wear(d: TDiskRow): string {
  const s = d.smart;
  if (s.percentageUsed !== null)
    return `${s.percentageUsed} % used${s.availableSparePercent !== null ? `, spare ${s.availableSparePercent} % (threshold ${s.availableSpareThresholdPercent ?? "?"} %)` : ""}`;
  return "—";
}

function errors(d: TDiskRow): string {
  const s = d.smart;
  const parts: string[] = [];
  if (s.mediaErrors !== null) parts.push(`${s.mediaErrors.toLocaleString("en-US")} media`);
  if (s.reallocatedSectors !== null)
    parts.push(`${s.reallocatedSectors.toLocaleString("en-US")} reallocated`);
  if (s.pendingSectors !== null) parts.push(`${s.pendingSectors.toLocaleString("en-US")} pending`);
  if (s.uncorrectableSectors !== null)
    parts.push(`${s.uncorrectableSectors.toLocaleString("en-US")} uncorrectable`);
  return parts.length ? parts.join(", ") : "—";
}

function NodeDisks({ node, canOperate }: { node: TNodeDisks; canOperate: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [said, setSaid] = useState<string | null>(null);
  const refresh = useMutation(
    trpc.devices.refreshSmart.mutationOptions({
      onSuccess: (r) => {
        setSaid(`SMART read on ${r.nodeId}: ${r.disks} disks.`);
        void queryClient.invalidateQueries({ queryKey: trpc.devices.disks.queryKey() });
      },
      onError: (e) => setSaid(errorMessage(e)),
    }),
  );
  const inv = node.inventory;
  return (
    <div data-testid="node-disks" data-node={node.nodeId}>
      <h3 style={{ fontSize: 13 }}>
        {node.nodeId} <FreshnessBadge value={node.nodeFreshness} />
      </h3>
      {!inv ? (
        <p className="muted">{node.error}</p>
      ) : (
        <>
          <p className="muted">
            Disks as sysfs listed them at <DateTime value={inv.readAt} />; SMART from{" "}
            <code>{inv.smartctl.path}</code>{" "}
            {inv.smartctl.intervalMs === null
              ? "only when asked"
              : `every ${Math.round(inv.smartctl.intervalMs / 60_000)} min`}
            .{inv.legsUnknownReason ? ` No mirror legs placed: ${inv.legsUnknownReason}.` : ""}{" "}
            <button
              type="button"
              disabled={!canOperate || refresh.isPending}
              title={
                canOperate
                  ? "run smartctl on every disk of this node now"
                  : "needs the operator role (SMART reads cost the drives something)"
              }
              onClick={() => refresh.mutate({ nodeId: node.nodeId })}
            >
              {refresh.isPending ? "Reading SMART…" : "Read SMART now"}
            </button>{" "}
            <span role="status" aria-live="polite">
              {said}
            </span>
          </p>
          {inv.disks.length === 0 ? (
            <p className="muted">This node's sysfs lists no block device that holds data.</p>
          ) : (
            <div style={{ overflowX: "auto" }}>
              <table data-testid="disks-table">
                <thead>
                  <tr>
                    <th>Device</th>
                    <th>Model / serial</th>
                    <th>Size</th>
                    <th>Kind</th>
                    <th>SMART health</th>
                    <th>Temp.</th>
                    <th>Wear</th>
                    <th>Errors</th>
                    <th>Power-on</th>
                    <th>Mirror legs on it</th>
                    <th>SMART read</th>
                  </tr>
                </thead>
                <tbody>
                  {inv.disks.map((d) => (
                    <tr
                      key={d.name}
                      data-testid="disk-row"
                      data-device={d.name}
                      data-smart={d.smart.status}
                    >
                      <td>
                        <code>{d.name}</code>
                        {d.majorMinor && <div className="muted">{d.majorMinor}</div>}
                      </td>
                      <td>
                        {d.smart.model ?? d.model ?? d.dm?.name ?? d.backingFile ?? "—"}
                        {(d.smart.serial ?? d.serial) && (
                          <div className="muted">{d.smart.serial ?? d.serial}</div>
                        )}
                      </td>
                      <td className="num">{formatBytes(d.sizeBytes)}</td>
                      <td>
                        {kindLabel[d.kind] ?? d.kind}
                        {d.rotational ? <span className="muted"> (spinning)</span> : null}
                        {d.state && d.state !== "live" && d.state !== "running" ? (
                          <div className="error">state {d.state}</div>
                        ) : null}
                      </td>
                      <td data-testid="disk-smart">
                        <SmartHealth smart={d.smart} />
                      </td>
                      <td className="num">
                        {d.smart.temperatureC === null ? "—" : `${d.smart.temperatureC} °C`}
                      </td>
                      <td>{wear(d)}</td>
                      <td>{errors(d)}</td>
                      <td className="num">
                        {d.smart.powerOnHours === null
                          ? "—"
                          : `${d.smart.powerOnHours.toLocaleString("en-US")} h`}
                      </td>
                      <td data-testid="disk-legs">
                        {d.legs.length === 0
                          ? "—"
                          : d.legs.map((l) => (
                              <div key={`${l.mirror}/${l.index}`} style={{ whiteSpace: "nowrap" }}>
                                <LegHealthChar health={l.health} /> {l.mirror} leg {l.index}
                                {l.device !== d.name ? (
                                  <span className="muted"> (via {l.device})</span>
                                ) : null}
                              </div>
                            ))}
                      </td>
                      <td>
                        {d.smart.readAt ? (
                          <>
                            {d.smartFreshness && <FreshnessBadge value={d.smartFreshness} />}{" "}
                            <DateTime value={d.smart.readAt} />
                          </>
                        ) : (
                          <span className="muted">—</span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </div>
  );
}

export function DisksPanel() {
  const trpc = useTRPC();
  const me = useQuery(trpc.session.me.queryOptions());
  const canOperate = me.data?.role === "operator" || me.data?.role === "admin";
  // Sysfs is cheap to read again; SMART itself is read on the agent's own schedule.
  const disks = useQuery({ ...trpc.devices.disks.queryOptions(), refetchInterval: 30_000 });
  return (
    <div className="panel" data-testid="disks">
      <h2>Disks</h2>
      {disks.isError ? (
        <p className="error">{errorMessage(disks.error)}</p>
      ) : !disks.data ? (
        <p className="muted">Asking the agents…</p>
      ) : disks.data.nodes.length === 0 ? (
        <p className="muted">No node has registered.</p>
      ) : (
        disks.data.nodes.map((n) => <NodeDisks key={n.nodeId} node={n} canOperate={canOperate} />)
      )}
    </div>
  );
}
