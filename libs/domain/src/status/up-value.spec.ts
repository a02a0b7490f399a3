import { TargetStatus as S } from '@fleetwatch/contracts';
import { upValueOf } from './up-value';

describe('upValueOf', () => {
  it.each([
    [S.Up, 1],
    [S.Down, 0],
    [S.Partial, 0],
    [S.Stale, 0],
    [S.Paused, null],
    [S.Unknown, null],
  ])('%s → %s', (status, expected) => {
    expect(upValueOf(status)).toBe(expected);
  });
});
