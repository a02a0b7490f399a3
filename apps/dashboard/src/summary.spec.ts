import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { countByKind, countByStatus, recentChanges } from './summary';

describe('summary', () => {
  it('counts every status, including zeros', () => {
    const c = countByStatus([{ status: TargetStatus.Up }, { status: TargetStatus.Up }, { status: TargetStatus.Down }]);
    expect(c).toEqual({ UP: 2, DOWN: 1, PARTIAL: 0, STALE: 0, PAUSED: 0, UNKNOWN: 0 });
  });
  it('counts every kind', () => {
    expect(countByKind([{ kind: TargetKind.Host }])).toEqual({ check: 0, host: 1, instance: 0 });
  });
  it.each([
    [
      'newest first',
      [
        { id: 'a', since: '2026-01-01T00:00:00Z' },
        { id: 'b', since: '2026-01-02T00:00:00Z' },
      ],
      ['b', 'a'],
    ],
    [
      'never-changed last, ties by id',
      [
        { id: 'c', since: null },
        { id: 'b', since: '2026-01-01T00:00:00Z' },
        { id: 'a', since: '2026-01-01T00:00:00Z' },
      ],
      ['a', 'b', 'c'],
    ],
  ])('recent changes: %s', (_name, targets, ids) => {
    expect(recentChanges(targets, 10).map((t) => t.id)).toEqual(ids);
  });
  it('keeps only n', () => {
    expect(
      recentChanges(
        [
          { id: 'a', since: null },
          { id: 'b', since: null },
        ],
        1,
      ),
    ).toHaveLength(1);
  });
});
