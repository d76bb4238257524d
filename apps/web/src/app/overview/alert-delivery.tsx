"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { DateTime } from "~/components/date-time";
import { alarmAlertNames } from "~/lib/alert-names";
import { errorMessage } from "~/lib/errors";
import { useTRPC } from "~/trpc/react";

type TSilenceRow = {
  id: string;
  alertname: string | null;
  mirror: string | null;
  nodeId: string | null;
  createdBy: string;
  reason: string;
  endsAt: Date;
};

/** The silence in force for a mirror's alarm, if any. */
export function silenceFor(
  silences: readonly TSilenceRow[] | undefined,
  kind: keyof typeof alarmAlertNames,
  mirror: string,
): TSilenceRow | null {
  return (
    silences?.find(
      (s) =>
        (s.alertname === null || s.alertname === alarmAlertNames[kind]) &&
        (s.mirror === null || s.mirror === mirror) &&
        s.nodeId === null,
    ) ?? null
  );
}

/** "Silence…" on one alarm: for how long and why (kept on the server, audited). */
export function SilenceButton({
  kind,
  mirror,
  canOperate,
}: {
  kind: keyof typeof alarmAlertNames;
  mirror: string;
  canOperate: boolean;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const silence = useMutation(
    trpc.alerts.silence.mutationOptions({
      onSuccess: () => {
        setOpen(false);
        setMessage(null);
        void queryClient.invalidateQueries({ queryKey: trpc.alerts.status.queryKey() });
      },
      onError: (e) => setMessage(errorMessage(e)),
    }),
  );
  if (!canOperate) return null;
  if (!open)
    return (
      <button type="button" onClick={() => setOpen(true)}>
        Silence…
      </button>
    );
  function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    silence.mutate({
      alertname: alarmAlertNames[kind],
      mirror,
      hours: Number(f.get("hours")),
      reason: String(f.get("reason") ?? ""),
    });
  }
  return (
    <form onSubmit={onSubmit} className="inline-form" data-testid="silence-form">
      <select name="hours" aria-label="silence for" defaultValue="4">
        <option value="1">1 h</option>
        <option value="4">4 h</option>
        <option value="24">24 h</option>
        <option value="168">7 d</option>
      </select>
      <input name="reason" aria-label="why silence it" placeholder="why (required)" size={18} />
      <button type="submit" disabled={silence.isPending}>
        Silence
      </button>
      <button type="button" onClick={() => setOpen(false)}>
        Cancel
      </button>
      {message && (
        <span className="error" role="status">
          {message}
        </span>
      )}
    </form>
  );
}

/** Where alerts go, how the last delivery went, and the silences in force. */
export function AlertDeliveryPanel({ canOperate }: { canOperate: boolean }) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const status = useQuery(trpc.alerts.status.queryOptions());
  const expire = useMutation(
    trpc.alerts.expire.mutationOptions({
      onSuccess: () => queryClient.invalidateQueries({ queryKey: trpc.alerts.status.queryKey() }),
    }),
  );
  if (!status.data) return null;
  const { configured, last, silences } = status.data;
  const targets = [
    configured.webhook ? "a webhook" : null,
    configured.alertmanager ? "Alertmanager" : null,
  ].filter(Boolean);
  return (
    <div className="panel" data-testid="alert-delivery">
      <h2>Alert delivery</h2>
      <p>
        {targets.length === 0
          ? "Alarms and critical events are not delivered anywhere: set MIRRORPLANE_ALERT_WEBHOOK_URL or MIRRORPLANE_ALERTMANAGER_URL."
          : `Alarms and unacknowledged critical events go to ${targets.join(" and ")}.`}{" "}
        {last && (
          <span className={last.errors.length ? "error" : "muted"}>
            Last round <DateTime value={last.at} />: {last.firing} firing, {last.silenced} silenced
            {last.errors.length ? ` — ${last.errors.join("; ")}` : ""}.
          </span>
        )}
      </p>
      {silences.length === 0 ? (
        <p className="muted">No silence in force.</p>
      ) : (
        <table data-testid="silences">
          <tbody>
            {silences.map((s) => (
              <tr key={s.id} data-testid="silence-row">
                <td>
                  {[s.alertname, s.mirror && `mirror ${s.mirror}`, s.nodeId && `node ${s.nodeId}`]
                    .filter(Boolean)
                    .join(", ")}
                </td>
                <td>
                  until <DateTime value={s.endsAt} />
                </td>
                <td>
                  {s.createdBy}: {s.reason}
                </td>
                <td>
                  {canOperate && (
                    <button
                      type="button"
                      disabled={expire.isPending}
                      onClick={() => expire.mutate({ id: s.id })}
                    >
                      Expire
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {expire.isError && <p className="error">{errorMessage(expire.error)}</p>}
    </div>
  );
}
