"use client";

import { useMutation, useQuery } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { authClient } from "~/lib/auth-client";
import { errorMessage } from "~/lib/errors";
import { useTRPC } from "~/trpc/react";

export function LoginForm({ next }: { next: string }) {
  const trpc = useTRPC();
  const setup = useQuery(trpc.setup.status.queryOptions());
  const createAdmin = useMutation(trpc.setup.createFirstAdmin.mutationOptions());
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const firstRun = setup.data?.needsFirstAdmin === true;

  async function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const username = String(form.get("username") ?? "").trim();
    const password = String(form.get("password") ?? "");
    setError(null);
    setBusy(true);
    try {
      if (firstRun) {
        if (password !== String(form.get("confirm") ?? "")) throw new Error("the passwords differ");
        await createAdmin.mutateAsync({ username, password });
      }
      const result = await authClient.signIn.username({ username, password });
      if (result.error) throw new Error(result.error.message ?? "sign-in failed");
      window.location.assign(next);
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  }

  if (setup.isPending) return <p className="muted">Loading…</p>;
  return (
    <div className="panel" style={{ maxWidth: 380, margin: "40px auto" }}>
      <h1>{firstRun ? "Create the first admin" : "Sign in"}</h1>
      {firstRun && (
        <p className="muted">
          No user exists yet. The account you create here is an admin; admins add viewers and
          operators later.
        </p>
      )}
      <form onSubmit={onSubmit} className="stack">
        <label>
          Username
          <input name="username" autoComplete="username" required minLength={2} maxLength={64} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete={firstRun ? "new-password" : "current-password"}
            required
            minLength={firstRun ? 10 : 1}
          />
        </label>
        {firstRun && (
          <label>
            Repeat password
            <input
              name="confirm"
              type="password"
              autoComplete="new-password"
              required
              minLength={10}
            />
          </label>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {firstRun ? "Create admin and sign in" : "Sign in"}
        </button>
      </form>
    </div>
  );
}
