import { TargetStatus as S } from '@fleetwatch/contracts';
import { applyLifecycle, type CheckLifecycle } from './check-lifecycle';
import { expireDeadlines } from './expiry';
import { applyObservation, isAwaited, type Observation, type TargetSnapshot } from './target-state';
import { checkResult, lifecycleOf } from './status.spec-helpers';

// Review of the awaited locations (3faa535): how long an awaited location may hold a check back.

const ID = 'check:0191d7a2-0000-7000-8000-0000000000bb';
const DAY = 86_400;

const lc = lifecycleOf(ID);
const result = (location: string, ok: boolean, at: number, seconds: number): Observation => ({
  ...checkResult(ID, location, ok, at),
  deadline: { at: at + 2 * seconds * 1000 + 5000, expireTo: S.Stale, reason: `no result within 2 × ${seconds}s` },
});
const policy = { downQuorumPct: 100 };
const apply = (t: TargetSnapshot | undefined, step: Observation | CheckLifecycle) =>
  'state' in step ? applyLifecycle(t, step, policy) : applyObservation(t, step, policy);
const sweep = (t: TargetSnapshot, now: number) =>
  expireDeadlines(
    new Map([[t.id, t]]),
    Object.keys(t.locations).map((location) => ({ targetId: t.id, location })),
    now,
    policy,
  ).changed[0] ?? t;

describe('an awaited location after the interval is shortened', () => {
  // Created with a daily interval at [a, b, c], shortened to 30 s a minute later, before any result: a and b report
  // DOWN every 30 s, c's collector is down. The check must be decided (DOWN, as before 3faa535, or after c goes STALE)
  // within two of the intervals it runs at, not two of the interval it had for a minute.
  it('holds the check no longer than two of the new intervals and the slack', () => {
    let t = apply(undefined, lc('active', 1, 0, { locations: ['a', 'b', 'c'], checkIntervalSeconds: DAY })).target;
    t = apply(t, lc('active', 2, 60_000, { locations: ['a', 'b', 'c'], checkIntervalSeconds: 30 })).target;
    expect(isAwaited(t.locations.c)).toBe(true);
    // Counted as a location added now is (no '(the interval was changed)': that marks one a longer interval moved).
    expect(t.locations.c.deadline).toEqual({
      at: 60_000 + 65_000,
      expireTo: S.Stale,
      reason: 'no result within 2 × 30s (first result awaited)',
    });
    for (let at = 70_000; at <= 200_000; at += 30_000) {
      t = apply(t, result('a', false, at, 30)).target;
      t = apply(t, result('b', false, at, 30)).target;
      t = sweep(t, at);
    }
    // 60 s + 2 × 30 s + 5 s: c has had its chance.
    expect(t.locations.c.status).toBe(S.Stale);
    expect(t.status).toBe(S.Down);
  });

  it('a location awaited by a resume: the same', () => {
    let t = apply(undefined, lc('active', 1, 0, { locations: ['a', 'b'], checkIntervalSeconds: DAY })).target;
    t = apply(t, result('a', true, 1000, DAY)).target;
    t = apply(t, result('b', true, 1000, DAY)).target;
    t = apply(t, lc('paused', 2, 2000)).target;
    t = apply(
      t,
      lc('active', 3, 3000, {
        checkIntervalSeconds: DAY,
        resumeDeadline: {
          at: 3000 + 2 * DAY * 1000 + 5000,
          expireTo: S.Stale,
          reason: `no result within 2 × ${DAY}s of the resume`,
        },
      }),
    ).target;
    t = apply(t, lc('active', 4, 60_000, { checkIntervalSeconds: 30 })).target;
    t = apply(t, result('a', false, 70_000, 30)).target;
    expect(t.status).toBe(S.Unknown);
    t = sweep(t, 60_000 + 65_000);
    expect(t.locations.b.status).toBe(S.Stale);
    expect(t.status).toBe(S.Down);
  });

  it('a location heard from keeps the deadline its last result set (the collector on its old schedule)', () => {
    let t = apply(undefined, lc('active', 1, 0, { locations: ['a'], checkIntervalSeconds: DAY })).target;
    t = apply(t, result('a', true, 1000, DAY)).target;
    const held = t.locations.a.deadline;
    t = apply(t, lc('active', 2, 60_000, { checkIntervalSeconds: 30 })).target;
    expect(t.locations.a.deadline).toEqual(held);
  });
});
