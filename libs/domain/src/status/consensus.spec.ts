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
