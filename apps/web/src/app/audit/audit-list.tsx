"use client";

import { useInfiniteQuery } from "@tanstack/react-query";
import { DateTime } from "~/components/date-time";
import { errorMessage } from "~/lib/errors";
import { useTRPC } from "~/trpc/react";

export function AuditList() {
  const trpc = useTRPC();
  const audit = useInfiniteQuery(
    trpc.audit.list.infiniteQueryOptions(
      { limit: 50 },
      { getNextPageParam: (last) => last.nextCursor ?? undefined },
    ),
  );
  if (audit.isPending) return <p className="muted">Loading…</p>;
  if (audit.isError) return <p className="error">{errorMessage(audit.error)}</p>;
  const items = audit.data.pages.flatMap((p) => p.items);
  return (
    <div className="panel">
      <table data-testid="audit-table">
        <thead>
          <tr>
            <th>When</th>
            <th>Who</th>
            <th>Action</th>
            <th>Target</th>
            <th>Parameters</th>
            <th>Outcome</th>
          </tr>
        </thead>
        <tbody>
          {items.map((a) => (
            <tr
              key={a.id}
              data-testid="audit-row"
              data-action={a.action}
              data-outcome={a.outcome}
              data-actor={a.actor}
            >
              <td>
                <DateTime value={a.at} />
              </td>
              <td>{a.actor}</td>
              <td>
                <code>{a.action}</code>
              </td>
              <td>{a.target}</td>
              <td>
                <code>{JSON.stringify(a.params)}</code>
              </td>
              <td className={a.outcome === "ok" ? "" : "error"}>
                {a.outcome}
                {a.detail ? `: ${a.detail}` : ""}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {audit.hasNextPage && (
        <button
          type="button"
          onClick={() => audit.fetchNextPage()}
          disabled={audit.isFetchingNextPage}
        >
          Older
        </button>
      )}
      {items.length === 0 && <p className="muted">Nothing has been changed yet.</p>}
    </div>
  );
}
