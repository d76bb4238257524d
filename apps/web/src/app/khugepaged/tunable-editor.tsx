"use client";

import { useMutation, useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { errorMessage } from "~/lib/errors";
import { useTRPC } from "~/trpc/react";

/** The choices of a `[always] madvise never` file, the selected one marked. */
export function kernelChoices(text: string | null): { choices: string[]; selected: string | null } {
  if (!text) return { choices: [], selected: null };
  const choices = text
    .trim()
    .split(/\s+/)
    .map((c) => c.replace(/^\[|\]$/g, ""));
  return { choices, selected: /\[([^\]]+)\]/.exec(text)?.[1] ?? null };
}

/**
 * Inline editor for one tunable; the agent applies the kernel's own validation. A number is
 * typed, a choice file (`enabled`, `defrag`…) is picked; the reason is recorded with the
 * change (the agent's event and the audit log).
 */
export function TunableEditor({
  nodeId,
  name,
  current,
  choices,
  canEdit,
}: {
  nodeId: string;
  name: string;
  current: string;
  /** For a choice file: what the kernel offers. */
  choices?: string[];
  canEdit: boolean;
}) {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const set = useMutation(
    trpc.khugepaged.setTunable.mutationOptions({
      onSuccess: (change) => {
        setMessage(
          change.changed
            ? `changed ${change.old ?? "?"} → ${change.new}`
            : `unchanged: it is already ${change.new}`,
        );
        setOpen(false);
        void queryClient.invalidateQueries({ queryKey: trpc.khugepaged.current.queryKey() });
      },
      onError: (error) => setMessage(errorMessage(error)),
    }),
  );
  const testId = `edit-${name.replaceAll("/", "-")}`;
  if (!canEdit) {
    return (
      <span className="muted" data-testid={testId}>
        changing it needs the operator role
      </span>
    );
  }
  function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const value = String(f.get("value") ?? "").trim();
    const reason = String(f.get("reason") ?? "").trim();
    if (value === "") {
      setMessage("Enter a value first.");
      return;
    }
    setMessage(null);
    set.mutate({ nodeId, name, value, ...(reason ? { reason } : {}) });
  }
  return (
    <span data-testid={testId}>
      {open ? (
        <form onSubmit={onSubmit} className="inline-form">
          {choices && choices.length > 0 ? (
            <select name="value" aria-label={`new value for ${name}`} defaultValue={current}>
              {choices.map((c) => (
                <option key={c}>{c}</option>
              ))}
            </select>
          ) : (
            <input
              name="value"
              aria-label={`new value for ${name}`}
              defaultValue={current}
              size={8}
            />
          )}
          <input
            name="reason"
            aria-label={`reason for changing ${name}`}
            placeholder="reason (recorded)"
            size={16}
            maxLength={500}
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

/** A per-size `hugepages-<size>kB/enabled` (the agent does not report their values yet). */
export function PerSizeEditor({ nodeId, canEdit }: { nodeId: string; canEdit: boolean }) {
  const trpc = useTRPC();
  const [message, setMessage] = useState<string | null>(null);
  const set = useMutation(
    trpc.khugepaged.setTunable.mutationOptions({
      onSuccess: (c) =>
        setMessage(c.changed ? `changed ${c.old ?? "?"} → ${c.new}` : `unchanged: ${c.new}`),
      onError: (error) => setMessage(errorMessage(error)),
    }),
  );
  if (!canEdit) return <p className="muted">Changing it needs the operator role.</p>;
  function onSubmit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const size = String(f.get("size") ?? "").trim();
    const reason = String(f.get("reason") ?? "").trim();
    if (!/^\d{1,8}$/.test(size)) {
      setMessage("The size is a whole number of kB, as in hugepages-2048kB.");
      return;
    }
    set.mutate({
      nodeId,
      name: `hugepages-${size}kB/${String(f.get("file"))}`,
      value: String(f.get("value")),
      ...(reason ? { reason } : {}),
    });
  }
  return (
    <form onSubmit={onSubmit} className="controls" data-testid="per-size-editor">
      <label>
        hugepages-
        <input name="size" aria-label="page size in kB" placeholder="2048" size={7} />
        kB/
      </label>
      <select name="file" aria-label="file">
        <option>enabled</option>
        <option>shmem_enabled</option>
      </select>
      <select name="value" aria-label="new value" defaultValue="inherit">
        {["always", "inherit", "madvise", "never", "within_size", "advise", "deny", "force"].map(
          (c) => (
            <option key={c}>{c}</option>
          ),
        )}
      </select>
      <input name="reason" aria-label="reason" placeholder="reason (recorded)" size={16} />
      <button type="submit" disabled={set.isPending}>
        Apply
      </button>
      {message && (
        <span className={set.isError ? "error" : "muted"} role="status">
          {message}
        </span>
      )}
    </form>
  );
}
