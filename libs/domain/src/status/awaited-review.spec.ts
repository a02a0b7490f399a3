import { TargetStatus as S } from '@fleetwatch/contracts';
import { expireDeadlines } from './expiry';
import { peerResultGraceMs } from './heartbeat';
import {
  ANOTHER_LOCATION_REPORTED,
  AWAITING_FIRST_RESULT,
  isAwaited,
  type Observation,
  type TargetSnapshot,
} from './target-state';
import { applierOf, checkResult, lifecycleOf, resumedCheck } from './status.spec-helpers';

// Review of the awaited locations (3faa535): how long an awaited location may hold a check back.

const ID = 'check:0191d7a2-0000-7000-8000-0000000000bb';
const DAY = 86_400;

const lc = lifecycleOf(ID);
const result = (location: string, ok: boolean, at: number, seconds: number): Observation => ({
  ...checkResult(ID, location, ok, at),
  deadline: { at: at + 2 * seconds * 1000 + 5000, expireTo: S.Stale, reason: `no result within 2 × ${seconds}s` },
});
const policy = { downQuorumPct: 100 };
const apply = applierOf(policy);
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

describe('an awaited location once another location has reported the same run', () => {
  // A daily check at [a, b, c], quorum 100 %, resumed: every collector runs it at the same instant (the phase grid), so
  // once a's result is in, b's and c's are due within the run's timeout and the slack — not two days on.
  const RESUMED = 3000;
  const SLOT = 3_600_000; // the check's next slot on the grid, an hour after the resume
  const G = peerResultGraceMs({ intervalSeconds: DAY, timeoutSeconds: 10, retries: 0 });
  const bounded = (location: string, ok: boolean, heard: number): Observation => ({
    ...result(location, ok, heard, DAY),
    peersDueBy: heard + G,
  });
  const resumedDaily = () =>
    resumedCheck(apply, lc, ['a', 'b', 'c'], DAY, RESUMED, (l, ok, at) => result(l, ok, at, DAY));

  it('the grace: the attempts (never past the interval), the lateness, one missed slot (up to 15 min), the slack', () => {
    // A daily check with a 10 s timeout: its run, a minute's lateness, a missed slot capped at 15 min, the slack —
    // DOWN about a quarter of an hour after the others agree, not two days on.
    expect(G).toBe(10_000 + 1000 + 60_000 + 900_000 + 5000);
    expect(G).toBe(16 * 60_000 + 16_000);
    expect(peerResultGraceMs({ intervalSeconds: DAY, timeoutSeconds: 10, retries: 2 })).toBe(
      3 * 11_000 + 60_000 + 900_000 + 5000,
    );
    // A collector from before the timeout was sent: the longest a check may have.
    expect(peerResultGraceMs({ intervalSeconds: DAY })).toBe(301_000 + 60_000 + 900_000 + 5000);
    // A 5-min check: a missed slot is a whole interval — 6 min 16 s.
    expect(peerResultGraceMs({ intervalSeconds: 300, timeoutSeconds: 10, retries: 0 })).toBe(6 * 60_000 + 16_000);
    // Up to the cap the missed slot is the interval; past it, the cap.
    expect(peerResultGraceMs({ intervalSeconds: 900, timeoutSeconds: 10, retries: 0 })).toBe(
      11_000 + 60_000 + 900_000 + 5000,
    );
    expect(peerResultGraceMs({ intervalSeconds: 901, timeoutSeconds: 10, retries: 0 })).toBe(
      11_000 + 60_000 + 900_000 + 5000,
    );
    // The attempts never count past the interval.
    expect(peerResultGraceMs({ intervalSeconds: 30, timeoutSeconds: 300, retries: 10 })).toBe(
      30_000 + 60_000 + 30_000 + 5000,
    );
    // A 60 s check: 136 s, past the creation's or resume's own deadline (2 × 60 s + 5 s), which then stands.
    expect(peerResultGraceMs({ intervalSeconds: 60, timeoutSeconds: 10, retries: 0 })).toBe(136_000);
    expect(peerResultGraceMs({ intervalSeconds: 60, timeoutSeconds: 10, retries: 0 })).toBeGreaterThan(
      2 * 60_000 + 5000,
    );
  });

  it('one location silent after the resume: DOWN within the grace once the others agree, not two days on', () => {
    let t = resumedDaily();
    t = apply(t, bounded('a', false, SLOT + 200)).target;
    t = apply(t, bounded('c', false, SLOT + 900)).target;
    expect(t.status).toBe(S.Unknown);
    // b stays awaited, due by a's bound (the earliest), its mark kept.
    expect(isAwaited(t.locations.b)).toBe(true);
    expect(t.locations.b.deadline).toEqual({
      at: SLOT + 200 + G,
      expireTo: S.Stale,
      reason: `no result within 2 × ${DAY}s of the resume${ANOTHER_LOCATION_REPORTED}${AWAITING_FIRST_RESULT}`,
    });
    expect(sweep(t, SLOT + 200 + G - 1)).toBe(t);
    const swept = expireDeadlines(new Map([[t.id, t]]), [{ targetId: t.id, location: 'b' }], SLOT + 200 + G, policy);
    const after = swept.changed[0];
    expect(after.status).toBe(S.Down);
    expect(after.locations.b.status).toBe(S.Stale);
    expect(swept.events.map((e) => [e.location, e.from, e.to, e.at])).toEqual([
      ['b', S.Unknown, S.Stale, SLOT + 200 + G],
      [null, S.Unknown, S.Down, SLOT + 200 + G],
    ]);
    // b's collector back the next day: b is heard again, and the verdict follows it.
    expect(apply(after, bounded('b', false, SLOT + DAY * 1000)).target.locations.b.status).toBe(S.Down);
    expect(apply(after, bounded('b', true, SLOT + DAY * 1000)).target.status).toBe(S.Partial);
  });

  it('a slow location reporting within the grace still counts: PARTIAL, never DOWN on the way', () => {
    let t = resumedDaily();
    const downs: number[] = [];
    for (const step of [bounded('a', false, SLOT + 200), bounded('c', false, SLOT + 900)]) {
      const r = apply(t, step);
      downs.push(...r.events.filter((e) => e.location === null && e.to === S.Down).map((e) => e.at));
      t = r.target;
    }
    t = sweep(t, SLOT + 200 + G - 1);
    const late = apply(t, bounded('b', true, SLOT + 200 + G - 1));
    expect(late.target.status).toBe(S.Partial);
    expect(isAwaited(late.target.locations.b)).toBe(false);
    expect(downs).toEqual([]);
    expect(sweep(late.target, SLOT + 200 + G)).toBe(late.target);
  });

  it('never moves an awaited deadline later, nor one not awaited, nor without a bound (a mapper from before)', () => {
    // 30 s interval: the resume's deadline (65 s on) comes before a bound of a run with a 300 s timeout.
    let t = apply(undefined, lc('active', 1, 0, { locations: ['a', 'b'], checkIntervalSeconds: 30 })).target;
    const held = t.locations.b.deadline;
    t = apply(t, { ...result('a', false, 1000, 30), peersDueBy: 1000 + 306_000 }).target;
    expect(t.locations.b.deadline).toEqual(held);
    // Daily, b heard already: a's bound leaves b's own deadline alone.
    let u = resumedDaily();
    u = apply(u, result('b', true, SLOT, DAY)).target;
    const own = u.locations.b.deadline;
    u = apply(u, bounded('a', false, SLOT + 100)).target;
    expect(u.locations.b.deadline).toEqual(own);
    expect(u.locations.c.deadline?.at).toBe(SLOT + 100 + G);
    // No bound: c keeps the resume's.
    const v = apply(resumedDaily(), result('a', false, SLOT, DAY)).target;
    expect(v.locations.c.deadline?.at).toBe(RESUMED + 2 * DAY * 1000 + 5000);
  });
});
