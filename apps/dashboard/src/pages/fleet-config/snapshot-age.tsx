import { ageText } from '../fleet/fleet-view';

/**
 * How old the member's snapshot that drift was compared with is (the API's drift views: `ageSeconds` beside `stale`).
 * A STALE member's drift is its last good snapshot's: the age is then highlighted, so an old "in sync" is not read as
 * current.
 */
export function SnapshotAge({ ageSeconds, stale }: { ageSeconds: number | null; stale: boolean }) {
  const text = ageSeconds === null ? 'snapshot age unknown' : `snapshot ${ageText(ageSeconds)} old`;
  return (
    <span
      className={stale ? 'fw-snapshot-age fw-snapshot-age--stale' : 'fw-snapshot-age fw-muted'}
      data-snapshot-age={ageSeconds ?? ''}
      data-stale={stale}
      title={
        stale
          ? 'The member is not reporting: drift is compared with its last good snapshot'
          : 'When the compared snapshot was read from the member'
      }
    >
      {text}
      {stale && ' (not reporting: last good one)'}
    </span>
  );
}
