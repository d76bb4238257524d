import Link from "next/link";
import { formatBytes } from "~/lib/bytes";

export interface TBlast {
  uuid: string;
  name: string | null;
  detail: string;
  bytesAtRisk: number | null;
}

/** The mirrors that lose their last good copy if something fails now, or plainly none. */
export function BlastRadius({
  entries,
  linked = true,
}: {
  entries: readonly TBlast[];
  /** Link each mirror to its page (off on a mirror's own page). */
  linked?: boolean;
}) {
  if (entries.length === 0)
    return <span className="muted">no mirror loses its last good copy</span>;
  return (
    <ul style={{ margin: 0, paddingLeft: 16 }}>
      {entries.map((b) => (
        <li key={b.uuid} className="error">
          {linked ? (
            <Link prefetch={false} href={`/mirrors/${encodeURIComponent(b.uuid)}`}>
              {b.name ?? b.uuid}
            </Link>
          ) : (
            (b.name ?? b.uuid)
          )}
          : {b.detail}
          {b.bytesAtRisk !== null ? ` (${formatBytes(b.bytesAtRisk)})` : ""}
        </li>
      ))}
    </ul>
  );
}
