/** Labels as `name=value` chips (text only: whatever a label holds is shown, never interpreted). */
export function LabelChips({
  labels,
  skip = [],
}: {
  labels: Readonly<Record<string, string>>;
  skip?: readonly string[];
}) {
  const entries = Object.entries(labels).filter(([k]) => !skip.includes(k));
  if (!entries.length) return <span className="fw-muted">—</span>;
  return (
    <span className="fw-labels">
      {entries.map(([k, v]) => (
        <span key={k} className="fw-chip">
          {k}={v}
        </span>
      ))}
    </span>
  );
}
