import { TargetStatus } from '@fleetwatch/contracts';
import { Button } from '@fleetwatch/ui';
import { toggle } from './target-filter';

/** Counts by status as the summary answers them (`all` and one per status), or undefined while loading. */
export type CountsByStatus = Partial<Record<TargetStatus | 'all', number>>;

/**
 * "All" and one toggle per status, each with its count over the whole set (not the filtered rows): the
 * targets and pushed-instances pages. `data-filter` names each button for tests and the benchmark. A click
 * hands over a change (not the list this render shows), so that it applies to the filter as it is by then.
 */
export function StatusFilterButtons({
  selected,
  counts,
  onChange,
  statuses = Object.values(TargetStatus),
}: {
  selected: readonly TargetStatus[];
  counts: CountsByStatus | undefined;
  onChange: (change: (status: readonly TargetStatus[]) => TargetStatus[]) => void;
  /** The statuses offered (every status unless told). */
  statuses?: readonly TargetStatus[];
}) {
  return (
    <div className="fw-row" role="group" aria-label="Filter by status">
      <Button aria-pressed={selected.length === 0} onClick={() => onChange(() => [])} data-filter="all">
        All ({counts?.all ?? '…'})
      </Button>
      {statuses.map((s) => (
        <Button
          key={s}
          aria-pressed={selected.includes(s)}
          onClick={() => onChange((current) => toggle(current, s))}
          data-filter={s}
        >
          {s} ({counts?.[s] ?? '…'})
        </Button>
      ))}
    </div>
  );
}
