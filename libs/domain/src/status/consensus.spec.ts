import fc from 'fast-check';
import { TargetStatus as S } from '@fleetwatch/contracts';
import { consensusOf } from './consensus';
import { statusOfLifecycle } from './lifecycle';
import { isNewer, transitionsFor } from './transitions';

describe('consensusOf', () => {
  it.each([
    [[], 100, S.Unknown],
    [[S.Up], 100, S.Up],
    [[S.Up, S.Up], 100, S.Up],
    [[S.Down, S.Down], 100, S.Down],
    [[S.Up, S.Down], 100, S.Partial],
    [[S.Up, S.Down], 50, S.Down],
    [[S.Up, S.Up, S.Down], 50, S.Partial],
    [[S.Up, S.Down, S.Down], 50, S.Down],
    [[S.Up, S.Stale], 100, S.Up],
    [[S.Down, S.Stale], 100, S.Down],
    [[S.Stale, S.Stale], 100, S.Stale],
    [[S.Paused, S.Paused], 100, S.Paused],
    [[S.Paused, S.Up], 100, S.Up],
    [[S.Unknown, S.Unknown], 100, S.Unknown],
    [[S.Partial, S.Up], 100, S.Partial],
  ])('%j with quorum %d%% → %s', (statuses, quorum, expected) => {
    expect(consensusOf(statuses as S[], { downQuorumPct: quorum as number })).toBe(expected);
  });

  it('a quorum met exactly is DOWN whatever the float rounding (29 of 100 down at 29 %, 29 of 50 at 58 %)', () => {
    const of = (down: number, total: number) => [
      ...Array.from({ length: down }, () => S.Down),
      ...Array.from({ length: total - down }, () => S.Up),
    ];
    // (29 / 100) * 100 is 28.999999999999996 in floating point: below 29, so it read PARTIAL.
    expect(consensusOf(of(29, 100), { downQuorumPct: 29 })).toBe(S.Down);
    expect(consensusOf(of(29, 50), { downQuorumPct: 58 })).toBe(S.Down);
    fc.assert(
      fc.property(
        fc
          .integer({ min: 2, max: 400 })
          .chain((total) =>
            fc.tuple(fc.constant(total), fc.integer({ min: 1, max: total - 1 }), fc.integer({ min: 1, max: 100 })),
          ),
        ([total, down, pct]) => {
          const expected = down * 100 >= pct * total ? S.Down : S.Partial;
          expect(consensusOf(of(down, total), { downQuorumPct: pct })).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('statusOfLifecycle', () => {
  it.each([
    ['running', S.Up],
    ['exited', S.Down],
    ['crashloopbackoff', S.Down],
    ['paused', S.Paused],
    ['degraded', S.Partial],
    ['pending', S.Unknown],
  ] as const)('%s → %s', (state, status) => expect(statusOfLifecycle(state)).toBe(status));
});

describe('transitions', () => {
  it('emits location and consensus transitions', () => {
    expect(transitionsFor('eu', S.Up, S.Down, S.Up, S.Partial, 'exited')).toEqual([
      { location: 'eu', from: S.Up, to: S.Down, reason: 'exited' },
      { location: null, from: S.Up, to: S.Partial, reason: 'location eu: exited' },
    ]);
  });
  it('emits nothing when nothing changes', () =>
    expect(transitionsFor('eu', S.Up, S.Up, S.Up, S.Up, 'ok')).toEqual([]));
  it('a first observation transitions from UNKNOWN', () =>
    expect(transitionsFor('eu', undefined, S.Up, S.Unknown, S.Up, 'running')).toHaveLength(2));
  it('never moves backwards in time', () => {
    expect(isNewer({ status: S.Up, observedAt: 100 }, 99)).toBe(false);
    expect(isNewer({ status: S.Up, observedAt: 100 }, 100)).toBe(true);
    expect(isNewer(undefined, 0)).toBe(true);
  });
});
