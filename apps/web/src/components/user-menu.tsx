"use client";

import { useQuery } from "@tanstack/react-query";
import { useTRPC } from "~/trpc/react";

export function UserMenu() {
  const trpc = useTRPC();
  const me = useQuery(trpc.session.me.queryOptions());
  if (!me.data) return null;
  return (
    <span className="user-menu">
      <span data-testid="current-user">{me.data.username}</span>{" "}
      <span className="badge fresh">{me.data.role}</span> <a href="/account/password">Password</a>{" "}
      <button
        type="button"
        onClick={async () => {
          const { authClient } = await import("~/lib/auth-client");
          await authClient.signOut();
          window.location.assign("/login");
        }}
      >
        Sign out
      </button>
    </span>
  );
}
