"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { DateTime } from "~/components/date-time";
import { errorMessage } from "~/lib/errors";
import { useTRPC } from "~/trpc/react";

const roles = ["viewer", "operator", "admin"] as const;

export function UsersAdmin() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const me = useQuery(trpc.session.me.queryOptions());
  const users = useQuery({ ...trpc.users.list.queryOptions(), enabled: me.data?.role === "admin" });
  const invalidate = () => queryClient.invalidateQueries({ queryKey: trpc.users.list.queryKey() });
  const create = useMutation(trpc.users.create.mutationOptions({ onSuccess: invalidate }));
  const setRole = useMutation(trpc.users.setRole.mutationOptions({ onSuccess: invalidate }));
  const setDisabled = useMutation(
    trpc.users.setDisabled.mutationOptions({ onSuccess: invalidate }),
  );
  const resetPassword = useMutation(
    trpc.users.resetPassword.mutationOptions({ onSuccess: invalidate }),
  );
  const [message, setMessage] = useState<string | null>(null);
  const [accountMessage, setAccountMessage] = useState<string | null>(null);
  /** The row whose disable confirmation or password form is open. */
  const [open, setOpen] = useState<{ username: string; what: "disable" | "reset" } | null>(null);

  if (me.data && me.data.role !== "admin") {
    return <p className="muted">Only admins manage users. You are signed in as {me.data.role}.</p>;
  }

  async function onCreate(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const formEl = e.currentTarget;
    const form = new FormData(formEl);
    setMessage(null);
    try {
      const created = await create.mutateAsync({
        username: String(form.get("username") ?? "").trim(),
        password: String(form.get("password") ?? ""),
        role: String(form.get("role")) as (typeof roles)[number],
      });
      setMessage(`created ${created.username} (${created.role})`);
      formEl.reset();
    } catch (err) {
      setMessage(errorMessage(err));
    }
  }

  async function onDisable(username: string, disabled: boolean) {
    setAccountMessage(null);
    try {
      const r = await setDisabled.mutateAsync({ username, disabled });
      setOpen(null);
      setAccountMessage(
        disabled
          ? `Disabled ${username}: ${r.sessionsEnded} session${r.sessionsEnded === 1 ? "" : "s"} ended; sign-in is refused until enabled again.`
          : `Enabled ${username}: they can sign in again.`,
      );
    } catch (err) {
      setAccountMessage(errorMessage(err));
    }
  }

  async function onReset(e: FormEvent<HTMLFormElement>, username: string) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    setAccountMessage(null);
    try {
      const r = await resetPassword.mutateAsync({
        username,
        password: String(form.get("temporary") ?? ""),
        mustChange: form.get("mustChange") === "on",
      });
      setOpen(null);
      setAccountMessage(
        `New password set for ${username}; their sessions ended.${r.mustChange ? " They must choose their own password when they next sign in." : ""}`,
      );
    } catch (err) {
      setAccountMessage(errorMessage(err));
    }
  }

  return (
    <div className="grid">
      {/* The whole row: the table has six columns and per-row actions. */}
      <div className="panel" style={{ gridColumn: "1 / -1" }}>
        <h2>Accounts</h2>
        {users.isError && <p className="error">{errorMessage(users.error)}</p>}
        <table data-testid="users-table">
          <thead>
            <tr>
              <th>Username</th>
              <th>Role</th>
              <th>Created</th>
              <th>Status</th>
              <th>Account</th>
            </tr>
          </thead>
          <tbody>
            {users.data?.map((u) => (
              <tr key={u.id} data-testid="user-row" data-username={u.username ?? ""}>
                <td>{u.username}</td>
                <td>
                  <select
                    aria-label={`role of ${u.username}`}
                    value={u.role}
                    disabled={setRole.isPending}
                    onChange={(e) =>
                      setRole.mutate(
                        {
                          username: u.username ?? "",
                          role: e.target.value as (typeof roles)[number],
                        },
                        { onError: (err) => setMessage(errorMessage(err)) },
                      )
                    }
                  >
                    {roles.map((r) => (
                      <option key={r}>{r}</option>
                    ))}
                  </select>
                </td>
                <td>{u.createdAt.toISOString().slice(0, 10)}</td>
                <td data-testid="user-status">
                  {u.disabledAt ? (
                    <span className="badge unknown">
                      disabled since <DateTime value={u.disabledAt} />
                    </span>
                  ) : (
                    <span className="badge fresh">enabled</span>
                  )}
                  {u.passwordChangeRequired && (
                    <span className="badge late">must change password</span>
                  )}
                </td>
                <td>
                  {u.id === me.data?.id ? (
                    <span className="muted">your own account (“Password” at the top right)</span>
                  ) : u.disabledAt ? (
                    <button
                      type="button"
                      disabled={setDisabled.isPending}
                      onClick={() => onDisable(u.username ?? "", false)}
                    >
                      Enable
                    </button>
                  ) : (
                    <>
                      <button
                        type="button"
                        onClick={() => setOpen({ username: u.username ?? "", what: "disable" })}
                      >
                        Disable…
                      </button>{" "}
                      <button
                        type="button"
                        onClick={() => setOpen({ username: u.username ?? "", what: "reset" })}
                      >
                        Reset password…
                      </button>
                    </>
                  )}
                  {open?.username === u.username && open.what === "disable" && (
                    <fieldset className="account-form" aria-label={`disable ${u.username}`}>
                      <p>
                        Disable {u.username}? Their sessions end now and sign-in is refused until an
                        admin enables the account again.
                      </p>
                      <button
                        type="button"
                        disabled={setDisabled.isPending}
                        onClick={() => onDisable(u.username ?? "", true)}
                      >
                        Disable {u.username}
                      </button>{" "}
                      <button type="button" onClick={() => setOpen(null)}>
                        Keep enabled
                      </button>
                    </fieldset>
                  )}
                  {open?.username === u.username && open.what === "reset" && (
                    <form
                      className="account-form stack"
                      aria-label={`reset the password of ${u.username}`}
                      onSubmit={(e) => onReset(e, u.username ?? "")}
                    >
                      <label>
                        Temporary password for {u.username} (≥ 10 characters)
                        <input
                          name="temporary"
                          type="password"
                          required
                          minLength={10}
                          autoComplete="new-password"
                        />
                      </label>
                      <label className="check">
                        <input name="mustChange" type="checkbox" defaultChecked /> Must choose their
                        own password at next sign-in
                      </label>
                      <span>
                        <button type="submit" disabled={resetPassword.isPending}>
                          Set password and end their sessions
                        </button>{" "}
                        <button type="button" onClick={() => setOpen(null)}>
                          Cancel
                        </button>
                      </span>
                    </form>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {accountMessage && (
          <p className="muted" role="status" data-testid="account-message">
            {accountMessage}
          </p>
        )}
      </div>
      <div className="panel">
        <h2>Add a user</h2>
        <form onSubmit={onCreate} className="stack">
          <label>
            Username
            <input
              name="username"
              required
              minLength={2}
              maxLength={64}
              pattern="[a-z0-9][a-z0-9._\-]{1,63}"
            />
          </label>
          <label>
            Initial password (≥ 10 characters)
            <input
              name="password"
              type="password"
              required
              minLength={10}
              autoComplete="new-password"
            />
          </label>
          <label>
            Role
            <select name="role" defaultValue="viewer">
              {roles.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </label>
          <button type="submit" disabled={create.isPending}>
            Create user
          </button>
          {message && (
            <p className="muted" role="status">
              {message}
            </p>
          )}
        </form>
      </div>
    </div>
  );
}
