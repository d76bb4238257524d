"use client";

import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
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
  const [message, setMessage] = useState<string | null>(null);

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

  return (
    <div className="grid">
      <div className="panel">
        <h2>Accounts</h2>
        {users.isError && <p className="error">{errorMessage(users.error)}</p>}
        <table data-testid="users-table">
          <thead>
            <tr>
              <th>Username</th>
              <th>Role</th>
              <th>Created</th>
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
              </tr>
            ))}
          </tbody>
        </table>
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
