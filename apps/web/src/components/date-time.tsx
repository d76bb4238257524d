import { formatDateTime, formatUtc } from "~/lib/format";

/** A date in the reader's time zone; the same instant in UTC on hover (and for machines). */
export function DateTime({ value }: { value: Date | string | number }) {
  const d = value instanceof Date ? value : new Date(value);
  return (
    <time dateTime={d.toISOString()} title={formatUtc(d)} suppressHydrationWarning>
      {formatDateTime(d)}
    </time>
  );
}
