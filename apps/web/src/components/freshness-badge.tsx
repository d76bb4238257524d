const labels = { fresh: "fresh", late: "late", unknown: "unknown" } as const;

export function FreshnessBadge({ value }: { value: keyof typeof labels }) {
  return (
    <span className={`badge ${value}`} data-testid="freshness">
      {labels[value]}
    </span>
  );
}
