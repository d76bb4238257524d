"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { useTRPC } from "~/trpc/react";

/** Inline editor for one tunable; the agent applies the kernel's own validation. */
export function TunableEditor({
  nodeId,
  name,
  current,
  canEdit,
}: {
  nodeId: string;
  name: string;
  current: string;
  canEdit: boolean;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const set = useMutation(
    trpc.khugepaged.setTunable.mutationOptions({
      onSuccess: (change) => {
        setMessage(`changed ${change.old ?? "?"} → ${change.new}`);
        setOpen(false);
        void queryClient.invalidateQueries({ queryKey: trpc.khugepaged.current.queryKey() });
      },
      onError: (error) => setMessage(error.message),
    }),
  );
  if (!canEdit) {
    return (
      <button type="button" disabled title="changing tunables needs the operator role">
        Edit
      </button>
    );
  }
  function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const value = String(new FormData(e.currentTarget).get("value") ?? "").trim();
    setMessage(null);
    set.mutate({ nodeId, name, value });
  }
  return (
    <span data-testid={`edit-${name.replace("/", "-")}`}>
      {open ? (
        <form onSubmit={onSubmit} className="inline-form">
          <input
            name="value"
            aria-label={`new value for ${name}`}
            defaultValue={current}
            size={8}
          />
          <button type="submit" disabled={set.isPending}>
            Apply
          </button>
          <button type="button" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <button type="button" onClick={() => setOpen(true)}>
          Edit
        </button>
      )}
      {message && (
        <div className={set.isError ? "error" : "muted"} role="status">
          {message}
        </div>
      )}
    </span>
  );
}
