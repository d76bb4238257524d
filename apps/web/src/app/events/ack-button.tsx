"use client";

import { type FormEvent, useState } from "react";

/** Acknowledge with an optional note and expiry (kept on the server, audited). */
export function AckButton({
  canAck,
  busy,
  onAck,
}: {
  canAck: boolean;
  busy: boolean;
  onAck: (opts: { note?: string; expiresInHours?: number }) => void;
}) {
  const [open, setOpen] = useState(false);
  if (!canAck) {
    return (
      <button
        type="button"
        disabled
        title="viewers cannot acknowledge events (operator role needed)"
      >
        Acknowledge
      </button>
    );
  }
  if (!open) {
    return (
      <button type="button" disabled={busy} onClick={() => setOpen(true)}>
        Acknowledge
      </button>
    );
  }
  function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const note = String(f.get("note") ?? "").trim();
    const hours = Number(f.get("expires"));
    onAck({ ...(note ? { note } : {}), ...(hours > 0 ? { expiresInHours: hours } : {}) });
    setOpen(false);
  }
  return (
    <form onSubmit={onSubmit} className="inline-form ack-form">
      <input name="note" aria-label="acknowledgement note" placeholder="note" size={10} />
      <select name="expires" aria-label="acknowledgement expiry" defaultValue="0">
        <option value="0">forever</option>
        <option value="1">1 h</option>
        <option value="24">24 h</option>
        <option value="168">7 d</option>
      </select>
      <button type="submit">OK</button>
    </form>
  );
}
