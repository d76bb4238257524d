"use client";

import { useQuery } from "@tanstack/react-query";
import { authClient } from "~/lib/auth-client";
import { useTRPC } from "~/trpc/react";

export function UserMenu() {
  const trpc = useTRPC();
  const me = useQuery(trpc.session.me.queryOptions());
  if (!me.data) return null;
  return (
    <span className="user-menu">
      <span data-testid="current-user">{me.data.username}</span>{" "}
      <span className="badge fresh">{me.data.role}</span>{" "}
      <button
        type="button"
        onClick={async () => {
          await authClient.signOut();
          window.location.assign("/login");
        }}
      >
        Sign out
      </button>
    </span>
  );
}
