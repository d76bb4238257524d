"use client";

import { type FormEvent, useState } from "react";
import { authClient } from "~/lib/auth-client";
import { errorMessage } from "~/lib/errors";

/**
 * Changes the signed-in user's own password through better-auth's /change-password (it
 * checks the current password and hashes the new one); other sessions are ended. The
 * server then clears a temporary-password flag and audits the change (server/auth.ts).
 */
export function ChangePasswordForm({ temporary }: { temporary: boolean }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(false);

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const newPassword = String(form.get("new") ?? "");
    setError(null);
    if (newPassword !== String(form.get("repeat") ?? "")) {
      setError("The two new passwords differ.");
      return;
    }
    setBusy(true);
    try {
      const result = await authClient.changePassword({
        currentPassword: String(form.get("current") ?? ""),
        newPassword,
        revokeOtherSessions: true,
      });
      if (result.error) throw new Error(result.error.message ?? "the password was not changed");
      setDone(true);
      if (temporary) window.location.reload();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="panel" style={{ maxWidth: 420 }}>
      <h2>{temporary ? "Choose your own password" : "Change your password"}</h2>
      {temporary && (
        <p className="muted" data-testid="must-change-password">
          An admin set a temporary password for this account. Choose your own password to continue;
          until then the dashboard shows nothing else.
        </p>
      )}
      <form onSubmit={onSubmit} className="stack">
        <label>
          {temporary ? "Temporary password" : "Current password"}
          <input name="current" type="password" required autoComplete="current-password" />
        </label>
        <label>
          New password (≥ 10 characters)
          <input
            name="new"
            type="password"
            required
            minLength={10}
            maxLength={256}
            autoComplete="new-password"
          />
        </label>
        <label>
          Repeat the new password
          <input
            name="repeat"
            type="password"
            required
            minLength={10}
            autoComplete="new-password"
          />
        </label>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {done && !temporary && (
          <p className="muted" role="status">
            Password changed; your other sessions were ended.
          </p>
        )}
        <button type="submit" disabled={busy}>
          Change password
        </button>
      </form>
    </div>
  );
}
