"use client";

import { useQuery } from "@tanstack/react-query";
import dynamic from "next/dynamic";
import type { ReactNode } from "react";
import { useTRPC } from "~/trpc/react";

// Loaded only when needed: the auth client is not part of every page's first load.
const ChangePasswordForm = dynamic(
  () => import("./change-password-form").then((m) => m.ChangePasswordForm),
  { ssr: false },
);

/**
 * A user signed in with a temporary password an admin set sees only the form to choose
 * their own (the server refuses every other call meanwhile: server/trpc.ts).
 */
export function PasswordGate({ children }: { children: ReactNode }) {
  const trpc = useTRPC();
  const me = useQuery(trpc.session.me.queryOptions());
  if (me.data?.mustChangePassword) return <ChangePasswordForm temporary />;
  return children;
}
