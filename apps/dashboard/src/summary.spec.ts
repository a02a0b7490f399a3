import { TargetStatus } from '@fleetwatch/contracts';
import { describe, expect, it } from 'vitest';
import { countByStatus } from './summary';

describe('countByStatus', () => {
  it('counts every status, including zeros', () => {
    const c = countByStatus([{ status: TargetStatus.Up }, { status: TargetStatus.Up }, { status: TargetStatus.Down }]);
    expect(c).toMatchObject({ UP: 2, DOWN: 1, PARTIAL: 0, STALE: 0, PAUSED: 0, UNKNOWN: 0 });
  });
});
