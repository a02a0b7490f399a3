import { ageText } from '../fleet/fleet-view';

/**
 * How old the member's snapshot that drift was compared with is (the API's drift views: `ageSeconds` beside `stale`).
 * A STALE member's drift is its last good snapshot's: the age is then highlighted, so an old "in sync" is not read as
 * current. A member that reports (`reporting`) can be stale too: its last poll could not read the snapshot (too large for
 * the budget's share, too slow), and it is then not called "not reporting".
 */
export function SnapshotAge({
  ageSeconds,
  stale,
  reporting = false,
}: {
  ageSeconds: number | null;
  stale: boolean;
  reporting?: boolean;
}) {
  const text =
    ageSeconds == null || !Number.isFinite(ageSeconds) ? 'snapshot age unknown' : `snapshot ${ageText(ageSeconds)} old`;
  return (
    <span
      className={stale ? 'fw-snapshot-age fw-snapshot-age--stale' : 'fw-snapshot-age fw-muted'}
      data-snapshot-age={ageSeconds ?? ''}
      data-stale={stale}
      title={
        !stale
          ? 'When the compared snapshot was read from the member'
          : reporting
            ? 'The member reports, but its last poll could not read its snapshot (see its error): drift is compared with the last one read'
            : 'The member is not reporting: drift is compared with its last good snapshot'
      }
    >
      {text}
      {stale && (reporting ? ' (not read at the last poll: last good one)' : ' (not reporting: last good one)')}
    </span>
  );
}
