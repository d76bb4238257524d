"use client";

import { useQuery } from "@tanstack/react-query";
import { useId, useRef, useState } from "react";
import { LegHealthChar } from "~/components/leg-health";
import { formatBytes } from "~/lib/bytes";
import { errorMessage } from "~/lib/errors";
import {
  dmsetupCommands,
  isLvmMirror,
  lvmCommands,
  physicalVolumes,
  replaceLegInTable,
  replacementCandidates,
  replacementState,
} from "~/lib/leg-replacement";
import { useTRPC } from "~/trpc/react";

// "Replace this leg…" (issue 13, complaint 10): a failed leg cannot be repaired by a resync;
// its device has to be replaced and the mirror's table reloaded. The dashboard guides that:
// 1. a replacement disk from the node's inventory, 2. the exact commands for the stack (LVM
// or a raw dm table), 3. it watches the node's kernel until the leg is on the new disk and
// alive, then offers the resync of what the new leg is missing (the whole mirror). It never
// runs the reload itself.

const WHY_NOT_RUN =
  "Mirrorplane does not run these. A table reload swaps the devices under a running mirror and suspends its I/O for a moment; whether this disk is the right one, and when to do it, is the operator's decision on that host.";

function Commands({ lines, label }: { lines: string[]; label: string }) {
  const [said, setSaid] = useState<string | null>(null);
  const pre = useRef<HTMLPreElement>(null);
  const text = lines.join("\n");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setSaid("Copied.");
    } catch {
      // Clipboard access needs HTTPS (or localhost): select the text for the operator instead.
      const range = document.createRange();
      if (pre.current) range.selectNodeContents(pre.current);
      const selection = window.getSelection();
      selection?.removeAllRanges();
      selection?.addRange(range);
      setSaid("The browser refused the clipboard here: the commands are selected, copy them.");
    }
  };
  return (
    <div>
      <pre
        ref={pre}
        data-testid="replace-commands"
        title={label}
        style={{ whiteSpace: "pre-wrap", wordBreak: "break-all", margin: "4px 0" }}
      >
        {text}
      </pre>
      <button type="button" onClick={() => void copy()}>
        Copy
      </button>{" "}
      <span role="status" className="muted">
        {said}
      </span>
    </div>
  );
}

export function ReplaceLeg({
  uuid,
  nodeId,
  legIndex,
  disabledReason,
  onPlanResync,
}: {
  uuid: string;
  nodeId: string;
  legIndex: number;
  disabledReason: string | null;
  /** Opens the page's plan of a resync of the whole mirror (plan → confirm → start). */
  onPlanResync: () => void;
}) {
  const trpc = useTRPC();
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [open, setOpen] = useState(false);
  const [picked, setPicked] = useState<string | null>(null);
  // While the dialog is open the mirror is watched here, whatever the page's own refresh does.
  const detail = useQuery({
    ...trpc.mirrors.detail.queryOptions({ uuid }),
    refetchInterval: open ? 2_000 : false,
  });
  const disks = useQuery({
    ...trpc.devices.disks.queryOptions({ nodeId }),
    enabled: open,
    refetchInterval: open ? 10_000 : false,
  });
  const d = detail.data;
  const view = d?.views.find((v) => v.nodeId === nodeId);
  // The leg as it was when the dialog opened: the watch compares the kernel against it.
  const [failed, setFailed] = useState<{ device: string; underlying: string[] } | null>(null);
  const leg = view?.legs?.[legIndex];

  const show = () => {
    if (leg) setFailed({ device: leg.device, underlying: leg.underlying });
    setOpen(true);
    dialog.current?.showModal();
  };
  const close = () => {
    setOpen(false);
    dialog.current?.close();
  };

  const node = disks.data?.nodes.find((n) => n.nodeId === nodeId);
  const candidates = node?.inventory
    ? replacementCandidates(node.inventory.disks, d?.sizeBytes ?? null)
    : [];
  const eligible = candidates.filter((c) => c.excluded === null);
  const excluded = candidates.filter((c) => c.excluded !== null);
  const chosen = eligible.find((c) => c.disk.name === picked)?.disk ?? null;

  const legs = view?.legs ?? null;
  const source = legs?.findIndex((l) => l.source) ?? -1;
  const lvm = legs
    ? isLvmMirror(
        view?.dmUuid,
        legs.map((l) => l.label),
      )
    : false;

  let commands: { steps: string[]; alternative: string[] | null; note: string | null } | null =
    null;
  let refusal: string | null = null;
  if (chosen && d && failed) {
    if (!d.name) refusal = "the agent does not report this mirror's dm name";
    else if (lvm) {
      const c = lvmCommands({
        dmName: d.name,
        newDisk: chosen.name,
        oldPvs: physicalVolumes(failed.underlying),
      });
      if (!c) refusal = `${d.name} is not an LVM name (vg-lv)`;
      else
        commands = {
          steps: c.repair,
          alternative: c.replace,
          note: `LVM removes the failed image of ${c.vg}/${c.lv} and allocates a new one on /dev/${chosen.name}; afterwards \`vgreduce --removemissing ${c.vg}\` drops a PV that is gone.`,
        };
    } else if (!view?.table) {
      refusal =
        "this node's agent does not report the mirror's table (a simulated kernel, or an older agent): the new table cannot be built";
    } else if (!chosen.majorMinor) {
      refusal = `sysfs gives no device number for ${chosen.name}`;
    } else {
      try {
        const r = replaceLegInTable(
          view.table,
          legIndex,
          chosen.majorMinor,
          source >= 0 ? source : null,
        );
        commands = {
          steps: dmsetupCommands(d.name, r.table),
          alternative: null,
          note:
            r.moved.length > 0
              ? `The failed leg was the first, and dm-raid1 reads from and copies from the first leg: leg ${r.moved[0]!.from} (it holds the data) moves first, the new device takes its place as leg ${r.newIndex}.`
              : `The new device is leg ${r.newIndex}, at offset 0; everything else in the table is as the kernel has it now.`,
        };
      } catch (error) {
        refusal = errorMessage(error);
      }
    }
  }
  const state = chosen ? replacementState(legs, chosen) : "waiting";

  return (
    <>
      <button
        type="button"
        data-testid="leg-replace-open"
        disabled={!!disabledReason}
        aria-describedby={disabledReason ? "operate-reason" : undefined}
        title={disabledReason ?? "pick a replacement disk, get the commands, watch the reload"}
        onClick={show}
      >
        Replace this leg…
      </button>
      <dialog
        ref={dialog}
        aria-labelledby={titleId}
        data-testid="leg-replace"
        onClose={() => setOpen(false)}
        style={{ maxWidth: 880, width: "90vw" }}
      >
        <h2 id={titleId}>
          Replace leg {legIndex} of {d?.name ?? uuid} on {nodeId}
        </h2>
        {failed && (
          <p className="muted">
            Now on <code>{failed.device}</code>
            {failed.underlying.length ? ` (on ${failed.underlying.join(", ")})` : ""}; the mirror is{" "}
            {formatBytes(d?.sizeBytes)}, so the new disk needs at least that
            {lvm ? " plus LVM's metadata" : ""}.
          </p>
        )}

        <h3>1. The replacement disk</h3>
        {disks.isError ? (
          <p className="error">{errorMessage(disks.error)}</p>
        ) : !node ? (
          <p className="muted">Asking {nodeId}'s agent for its disks…</p>
        ) : !node.inventory ? (
          <p className="error">{node.error}</p>
        ) : (
          <>
            {eligible.length === 0 ? (
              <p className="error">No disk on {nodeId} can take this leg (reasons below).</p>
            ) : (
              <fieldset data-testid="replace-candidates">
                <legend>Disks on {nodeId} that can take it</legend>
                {eligible.map((c) => (
                  <label key={c.disk.name} style={{ display: "block" }}>
                    <input
                      type="radio"
                      name="replacement"
                      value={c.disk.name}
                      checked={picked === c.disk.name}
                      onChange={() => setPicked(c.disk.name)}
                    />{" "}
                    <code>{c.disk.name}</code> {formatBytes(c.disk.sizeBytes)} {c.disk.model ?? ""}{" "}
                    {c.disk.serial ? `(${c.disk.serial})` : ""}
                    {c.cautions.map((text) => (
                      <span
                        key={text}
                        className="muted"
                        style={{ display: "block", marginLeft: 24 }}
                      >
                        {text}
                      </span>
                    ))}
                  </label>
                ))}
              </fieldset>
            )}
            {excluded.length > 0 && (
              <details data-testid="replace-excluded">
                <summary>
                  {excluded.length} other disk{excluded.length === 1 ? "" : "s"} cannot take it
                </summary>
                <ul>
                  {excluded.map((c) => (
                    <li key={c.disk.name}>
                      <code>{c.disk.name}</code>: {c.excluded}
                    </li>
                  ))}
                </ul>
              </details>
            )}
          </>
        )}

        <h3>2. The commands, on {nodeId}</h3>
        {!chosen ? (
          <p className="muted">Pick a disk first.</p>
        ) : refusal ? (
          <p className="error">Cannot give the commands: {refusal}.</p>
        ) : commands ? (
          <>
            <p>
              {lvm
                ? "This mirror is LVM's: let LVM replace the image (it rewrites the table itself)."
                : "A raw dm mirror: load the table with the new leg, then swap it in."}{" "}
              {commands.note}
            </p>
            <Commands lines={commands.steps} label="commands to run on the node" />
            {commands.alternative && (
              <details>
                <summary>If the old device still answers: move the image off it instead</summary>
                <Commands lines={commands.alternative} label="lvconvert --replace" />
              </details>
            )}
            {!lvm && d && d.nodes.length > 1 && (
              <p className="muted">
                Every node holding this mirror ({d.nodes.join(", ")}) runs its own table: load the
                same change on each, with that host's device numbers.
              </p>
            )}
            <p className="muted" data-testid="replace-why">
              {WHY_NOT_RUN}
            </p>
          </>
        ) : null}

        <h3>3. Watching {nodeId}'s kernel</h3>
        {!chosen ? (
          <p className="muted">Pick a disk first.</p>
        ) : (
          <div data-testid="replace-watch" data-state={state} aria-live="polite">
            {state === "waiting" && (
              <p className="muted">
                Waiting for a leg on <code>{chosen.name}</code> — legs now:{" "}
                {legs?.map((l, i) => (
                  // biome-ignore lint/suspicious/noArrayIndexKey: a leg is its position
                  <span key={i}>
                    {i > 0 ? ", " : ""}
                    <LegHealthChar health={l.health} /> {l.device}
                  </span>
                )) ?? "not reported"}
                .
              </p>
            )}
            {state === "loaded-with-errors" && (
              <p className="error">
                A leg on {chosen.name} is loaded but not alive: check the device and the kernel log
                on {nodeId}.
              </p>
            )}
            {state === "done" && d && (
              <>
                <p>
                  <strong>The leg on {chosen.name} is alive (A).</strong> It holds none of the
                  mirror's data yet, and the cluster's log still counts regions in sync that only
                  the other legs hold: resync the whole mirror onto it.
                </p>
                <button
                  type="button"
                  disabled={!!disabledReason}
                  onClick={() => {
                    close();
                    onPlanResync();
                  }}
                >
                  Plan a resync of the whole mirror ({d.regionCount.toLocaleString("en-US")}{" "}
                  regions)…
                </button>
              </>
            )}
          </div>
        )}
        <p style={{ marginTop: 12 }}>
          <button type="button" onClick={close}>
            Close
          </button>
        </p>
      </dialog>
    </>
  );
}
