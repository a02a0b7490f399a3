import { TargetStatus } from '@fleetwatch/contracts';
import { Button } from '@fleetwatch/ui';
import { toggle } from './target-filter';

/** Counts by status as the summary answers them (`all` and one per status), or undefined while loading. */
export type CountsByStatus = Partial<Record<TargetStatus | 'all', number>>;

/**
 * "All" and one toggle per status, each with its count over the whole set (not the filtered rows): the
 * targets and pushed-instances pages. `data-filter` names each button for tests and the benchmark.
 */
export function StatusFilterButtons({
  selected,
  counts,
  onChange,
}: {
  selected: readonly TargetStatus[];
  counts: CountsByStatus | undefined;
  onChange: (status: TargetStatus[]) => void;
}) {
  return (
    <div className="fw-row" role="group" aria-label="Filter by status">
      <Button aria-pressed={selected.length === 0} onClick={() => onChange([])} data-filter="all">
        All ({counts?.all ?? '…'})
      </Button>
      {Object.values(TargetStatus).map((s) => (
        <Button
          key={s}
          aria-pressed={selected.includes(s)}
          onClick={() => onChange(toggle([...selected], s))}
          data-filter={s}
        >
          {s} ({counts?.[s] ?? '…'})
        </Button>
      ))}
    </div>
  );
}
