import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { countByKind, countByStatus } from './summary';

describe('summary', () => {
  it('counts every status, including zeros', () => {
    const c = countByStatus([{ status: TargetStatus.Up }, { status: TargetStatus.Up }, { status: TargetStatus.Down }]);
    expect(c).toEqual({ UP: 2, DOWN: 1, PARTIAL: 0, STALE: 0, PAUSED: 0, UNKNOWN: 0 });
  });
  it('counts every kind', () => {
    expect(countByKind([{ kind: TargetKind.Host }])).toEqual({ check: 0, host: 1, instance: 0 });
  });
});
