import fc from 'fast-check';
import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { applyLifecycle, type CheckLifecycle } from './check-lifecycle';
import { consensusOf } from './consensus';
import { expireDeadlines } from './expiry';
import { MISSED_SLOT_CAP_MS, peerResultGraceMs } from './heartbeat';
import {
  applyExpiry,
  applyObservation,
  AWAITING_FIRST_RESULT,
  consensusOfLocations,
  isAwaited,
  type LocationSnapshot,
  type Observation,
  type TargetSnapshot,
} from './target-state';
import { checkResult, lifecycleOf } from './status.spec-helpers';

// A probed check's lifecycle (created, resumed) awaits each location's first result: until then the location neither
// votes nor lets the others decide alone a verdict it could still change (consensusOf's `awaited`).

const ID = 'check:0191d7a2-0000-7000-8000-0000000000aa';
const NAMES = ['a', 'b', 'c', 'd', 'e'];
const RESUMED_AT = 8000;
const DEADLINE = RESUMED_AT + 65_000;
const resumeDeadline = { at: DEADLINE, expireTo: S.Stale, reason: 'no result within 2 × 30s of the resume' };

const lc = lifecycleOf(ID);
const result = (location: string, ok: boolean, at: number, withDeadline = true): Observation => ({
  ...checkResult(ID, location, ok, at),
  ...(withDeadline ? { deadline: { at: at + 65_000, expireTo: S.Stale, reason: 'no result within 2 × 30s' } } : {}),
});

function apply(target: TargetSnapshot | undefined, step: Observation | CheckLifecycle, quorum: number) {
  const policy = { downQuorumPct: quorum };
  return 'state' in step ? applyLifecycle(target, step, policy) : applyObservation(target, step, policy);
}

/** A check run from `names` (each UP once), paused, then resumed: every location awaited. */
function resumed(names: readonly string[], quorum: number): TargetSnapshot {
  let t: TargetSnapshot | undefined;
  for (const step of [
    ...names.map((n) => result(n, true, 1000)),
    lc('paused', 2, 5000),
    lc('active', 3, RESUMED_AT, { resumeDeadline, checkIntervalSeconds: 30 }),
  ])
    t = apply(t, step, quorum).target;
  return t as TargetSnapshot;
}

/** A new check configured at `names`: every location awaited. */
function created(names: readonly string[], quorum: number): TargetSnapshot {
  return apply(
    undefined,
    lc('active', 1, RESUMED_AT, { locations: [...names], checkIntervalSeconds: 30, downQuorumPct: quorum }),
    quorum,
  ).target;
}

type FirstStep = 'up' | 'down' | 'stale';

/**
 * One location's first step: its first result, or its deadline passing (the sweeper). `grace`: the result bounds the
 * wait for the others awaited to `at + grace` (peersDueBy: the mapper's heard + peerResultGraceMs); undefined: none.
 */
function first(
  t: TargetSnapshot,
  location: string,
  step: FirstStep,
  at: number,
  quorum: number,
  grace?: number,
): TargetSnapshot {
  if (step === 'stale') {
    const l = t.locations[location];
    return applyExpiry(t, location, l.deadline?.at ?? DEADLINE, { downQuorumPct: quorum }).target;
  }
  const obs = result(location, step === 'up', at);
  return apply(t, grace === undefined ? obs : { ...obs, peersDueBy: at + grace }, quorum).target;
}

const plain = (t: TargetSnapshot, quorum: number) =>
  consensusOf(
    Object.values(t.locations).map((l) => l.status),
    { downQuorumPct: quorum },
  );

/** n locations, a quorum, each location's first step, and two delivery orders. */
const scenario = fc.integer({ min: 1, max: 5 }).chain((n) =>
  fc.record({
    names: fc.constant(NAMES.slice(0, n)),
    quorum: fc.integer({ min: 1, max: 100 }),
    start: fc.constantFrom<'resumed' | 'created'>('resumed', 'created'),
    steps: fc.array(fc.constantFrom<FirstStep>('up', 'down', 'stale'), { minLength: n, maxLength: n }),
    order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
    other: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
    // Results that bound the wait for the others (another location reported the run), or not (a mapper from before).
    grace: fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: undefined }),
  }),
);
const begin = (s: { names: string[]; quorum: number; start: 'resumed' | 'created' }) =>
  s.start === 'resumed' ? resumed(s.names, s.quorum) : created(s.names, s.quorum);

/** consensusOf as it was before awaited locations: with none awaited it must say the same. */
function before(statuses: readonly S[], quorum: number): S {
  if (statuses.length === 0) return S.Unknown;
  if (statuses.every((s) => s === S.Paused)) return S.Paused;
  const active = statuses.filter((s) => s !== S.Paused);
  if (active.every((s) => s === S.Stale)) return S.Stale;
  const up = active.filter((s) => s === S.Up).length;
  const down = active.filter((s) => s === S.Down).length;
  const reporting = up + down + active.filter((s) => s === S.Partial).length;
  if (reporting === 0) return S.Unknown;
  if (down === reporting) return S.Down;
  if (up === reporting) return S.Up;
  if (down > 0 && down * 100 >= quorum * reporting) return S.Down;
  return S.Partial;
}

describe('consensusOf with nothing awaited', () => {
  it('says what it said before', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(S.Up, S.Down, S.Partial, S.Unknown, S.Stale, S.Paused), { maxLength: 8 }),
        fc.integer({ min: 1, max: 100 }),
        (statuses, quorum) => {
          expect(consensusOf(statuses, { downQuorumPct: quorum })).toBe(before(statuses, quorum));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('awaited locations (a check created or resumed)', () => {
  it('3 locations, quorum 2 of 3, resumed: A down first decides nothing; B then decides DOWN, or B up and C decide', () => {
    const q = 66;
    const start = resumed(['a', 'b', 'c'], q);
    expect(start.status).toBe(S.Unknown);
    expect(Object.values(start.locations).every(isAwaited)).toBe(true);

    const aDown = apply(start, result('a', false, 9000), q);
    // Its own location moves; the consensus does not: B and C could still make it PARTIAL.
    expect(aDown.target.status).toBe(S.Unknown);
    expect(aDown.events.map((e) => [e.location, e.to])).toEqual([['a', S.Down]]);
    expect(isAwaited(aDown.target.locations.a)).toBe(false);

    // B down too: two of three whatever C brings → DOWN, before C reports.
    expect(apply(aDown.target, result('b', false, 9100), q).target.status).toBe(S.Down);
    // B up: C decides.
    const bUp = apply(aDown.target, result('b', true, 9100), q).target;
    expect(bUp.status).toBe(S.Unknown);
    expect(apply(bUp, result('c', false, 9200), q).target.status).toBe(S.Down);
    expect(apply(bUp, result('c', true, 9200), q).target.status).toBe(S.Partial);
    // C never reports: STALE at its deadline, and A and B decide (1 of 2 down: PARTIAL).
    const cStale = applyExpiry(bUp, 'c', DEADLINE, { downQuorumPct: q });
    expect(cStale.target.status).toBe(S.Partial);
    expect(cStale.events.map((e) => [e.location, e.to])).toEqual([
      ['c', S.Stale],
      [null, S.Partial],
    ]);
  });

  it('a quorum met by one location whatever the others say is decided by it (1 of 3 at 33 %)', () => {
    const t = apply(resumed(['a', 'b', 'c'], 33), result('a', false, 9000), 33).target;
    expect(t.status).toBe(S.Down);
  });

  it('once every awaited location has had its first result or deadline, the order they came in does not matter', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const play = (order: number[]) =>
          order.reduce((t, i, k) => first(t, s.names[i], s.steps[i], 9000 + k, s.quorum, s.grace), begin(s));
        const one = play(s.order);
        const two = play(s.other);
        expect(one.status).toBe(two.status);
        // And it is the consensus of the locations as they are, nothing awaited any more.
        expect(Object.values(one.locations).some(isAwaited)).toBe(false);
        expect(one.status).toBe(plain(one, s.quorum));
      }),
      { numRuns: 400 },
    );
  });

  it('no verdict is reached that the locations still awaited could change (none decides alone)', () => {
    fc.assert(
      fc.property(scenario, fc.nat(), (s, cut) => {
        const k = cut % (s.names.length + 1);
        let t = begin(s);
        const seen: S[] = [];
        s.order.forEach((i, at) => {
          if (at < k) t = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum, s.grace);
        });
        seen.push(t.status);
        // Whatever the rest bring, in the order given: every verdict reached on the way is the final one.
        s.order.forEach((i, at) => {
          if (at >= k) {
            t = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum, s.grace);
            seen.push(t.status);
          }
        });
        const final = t.status;
        for (const status of seen) if (status !== S.Unknown) expect(status).toBe(final);
      }),
      { numRuns: 400 },
    );
  });

  it('a success never turns the target DOWN, nor a failure UP', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        let t = begin(s);
        s.order.forEach((i, at) => {
          const next = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum, s.grace);
          if (next.status !== t.status && s.steps[i] !== 'stale')
            expect(next.status).not.toBe(s.steps[i] === 'up' ? S.Down : S.Up);
          t = next;
        });
      }),
      { numRuns: 400 },
    );
  });

  it('an awaited location holds the target no longer than its deadline (the sweep)', () => {
    fc.assert(
      fc.property(scenario, fc.nat(), (s, cut) => {
        const k = cut % (s.names.length + 1);
        let t = begin(s);
        s.order.slice(0, k).forEach((i, at) => {
          if (s.steps[i] !== 'stale') t = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum, s.grace);
        });
        const due = Object.values(t.locations).filter(isAwaited);
        expect(due.every((l) => (l.deadline?.at ?? Infinity) <= DEADLINE)).toBe(true);
        const swept = expireDeadlines(
          new Map([[ID, t]]),
          s.names.map((location) => ({ targetId: ID, location })),
          DEADLINE,
          { downQuorumPct: s.quorum },
        );
        const after = swept.changed[0] ?? t;
        expect(Object.values(after.locations).some(isAwaited)).toBe(false);
        expect(after.status).toBe(plain(after, s.quorum));
      }),
      { numRuns: 300 },
    );
  });

  it('a result bounds every other awaited location to its peersDueBy (never later), and a sweep there decides', () => {
    fc.assert(
      fc.property(scenario, fc.nat(), fc.integer({ min: 1, max: 100_000 }), (s, cut, grace) => {
        const k = cut % s.names.length;
        let t = begin(s);
        s.order.slice(0, k).forEach((i, at) => {
          if (s.steps[i] !== 'stale') t = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum, s.grace);
        });
        const reporter = s.names[s.order[k]];
        const was = Object.fromEntries(Object.entries(t.locations).map(([n, l]) => [n, l.deadline]));
        const at = 20_000;
        t = first(t, reporter, s.steps[s.order[k]] === 'down' ? 'down' : 'up', at, s.quorum, grace);
        for (const [name, l] of Object.entries(t.locations)) {
          if (name === reporter) continue;
          const before = was[name];
          if (isAwaited(l)) {
            expect(l.deadline?.at).toBe(Math.min(before?.at ?? Infinity, at + grace));
            expect(l.deadline?.reason.endsWith(AWAITING_FIRST_RESULT)).toBe(true);
          } else expect(l.deadline).toEqual(before);
        }
        const swept = expireDeadlines(
          new Map([[ID, t]]),
          s.names.map((location) => ({ targetId: ID, location })),
          at + grace,
          { downQuorumPct: s.quorum },
        );
        const after = swept.changed[0] ?? t;
        expect(Object.values(after.locations).some(isAwaited)).toBe(false);
        expect(after.status).toBe(plain(after, s.quorum));
      }),
      { numRuns: 300 },
    );
  });

  it('in time: a location heard within the grace of the first is counted before any verdict; a later one, when heard', () => {
    // A timeline of one run after the creation or resume, as the collectors make it: every location runs the slot,
    // a healthy one up to a minute late (read the change on its assignment refresh, a full queue, a catch-up, a delay
    // at its site) — or, for intervals up to MISSED_SLOT_CAP_MS, at the next slot (it read the change on its refresh
    // after the slot) — for its attempts (each its timeout and the probe's overrun; never past its next slot), and its
    // result is heard within the slack; the grace (peerResultGraceMs) bounds the others from the first heard. The
    // sweeper runs before each result is heard. A location made STALE by the bound (its collector was down, or its
    // result later than the grace) that reports afterwards is heard as any STALE one is.
    const SLOT = RESUMED_AT + 1000;
    const late = fc.record({
      ok: fc.boolean(),
      how: fc.constantFrom<'healthy' | 'late' | 'silent'>('healthy', 'healthy', 'late', 'silent'),
      lateness: fc.integer({ min: 0, max: 60_000 }),
      missedSlot: fc.boolean(),
      run: fc.double({ min: 0, max: 1, noNaN: true }),
      transport: fc.integer({ min: 0, max: 4_999 }),
      after: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    fc.assert(
      fc.property(
        fc.constantFrom(30, 60, 300, 3600, 86_400),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 100 }),
        fc.constantFrom<'resumed' | 'created'>('resumed', 'created'),
        fc.array(late, { minLength: 1, maxLength: 5 }),
        (interval, timeoutSeconds, retries, quorum, start, ls) => {
          const I = interval * 1000;
          const G = peerResultGraceMs({ intervalSeconds: interval, timeoutSeconds, retries });
          const names = ls.map((_, i) => NAMES[i]);
          const own = (at: number) => ({
            at: at + 2 * I + 5000,
            expireTo: S.Stale,
            reason: `no result within 2 × ${interval}s`,
          });
          const policy = { downQuorumPct: quorum };
          let t: TargetSnapshot | undefined;
          if (start === 'resumed') {
            for (const n of names)
              t = apply(t, { ...checkResult(ID, n, true, 1000), deadline: own(1000) }, quorum).target;
            t = apply(t, lc('paused', 2, 5000), quorum).target;
            const resumeDeadline = { ...own(RESUMED_AT), reason: `no result within 2 × ${interval}s of the resume` };
            t = apply(
              t,
              lc('active', 3, RESUMED_AT, { resumeDeadline, checkIntervalSeconds: interval }),
              quorum,
            ).target;
          } else
            t = apply(
              undefined,
              lc('active', 1, RESUMED_AT, { locations: names, checkIntervalSeconds: interval, downQuorumPct: quorum }),
              quorum,
            ).target;
          // When each healthy location's result is heard; the first of them bounds the others.
          const attemptsMs = (retries + 1) * (timeoutSeconds * 1000 + 1000);
          // A missed slot (intervals up to the cap) runs one interval on; its result is still heard within the
          // creation's or resume's own deadline (two intervals and the slack from it: SLOT is a second after it).
          const resumeDue = RESUMED_AT + 2 * I + 5000;
          const heardAt = ls.map((l) => {
            const missed = l.missedSlot && I <= MISSED_SLOT_CAP_MS ? I : 0;
            const heard = SLOT + missed + Math.min(I, l.lateness + Math.floor(l.run * attemptsMs)) + l.transport;
            return missed > 0 ? Math.min(heard, resumeDue) : heard;
          });
          if (!ls.some((l) => l.how === 'healthy')) ls[0] = { ...ls[0], how: 'healthy' };
          const first = Math.min(...heardAt.filter((_, i) => ls[i].how === 'healthy'));
          const events = ls
            .map((l, i) => ({
              i,
              ...l,
              at: l.how === 'late' ? first + G + 1 + Math.floor(l.after * (I - 5000)) : heardAt[i],
            }))
            .filter((e) => e.how !== 'silent')
            .sort((x, y) => x.at - y.at || x.i - y.i);
          const seen: S[] = [t.status];
          const sweep = (now: number) => {
            const swept = expireDeadlines(
              new Map([[ID, t as TargetSnapshot]]),
              names.map((location) => ({ targetId: ID, location })),
              now,
              policy,
            );
            t = swept.changed[0] ?? t;
          };
          for (const e of events) {
            sweep(e.at - 1);
            seen.push(t.status);
            const name = names[e.i];
            const wasStale = t.locations[name].status === S.Stale;
            // Made STALE by the bound only if later than the grace; heard all the same.
            expect(wasStale).toBe(e.how === 'late');
            const obs = { ...checkResult(ID, name, e.ok, e.at), deadline: own(e.at), peersDueBy: e.at + G };
            t = apply(t, obs, quorum).target;
            seen.push(t.status);
            expect(t.locations[name].status).toBe(e.ok ? S.Up : S.Down);
            expect(isAwaited(t.locations[name])).toBe(false);
          }
          // Every bound passed (the grace from the first heard, or the creation's or resume's own deadline when
          // sooner: a grace with a missed slot may outlast it), yet no reporter's own deadline (two intervals on).
          sweep(Math.max(Math.min(first + G, resumeDue), ...events.map((e) => e.at)));
          seen.push(t.status);
          // Every bound passed: nothing awaited, the locations as they are decide; the silent ones STALE.
          expect(Object.values(t.locations).some(isAwaited)).toBe(false);
          expect(t.status).toBe(plain(t, quorum));
          ls.forEach((l, i) => l.how === 'silent' && expect(t?.locations[names[i]].status).toBe(S.Stale));
          // Nobody later than the grace: no verdict on the way but the final one (no DOWN, then PARTIAL: no flap).
          if (!ls.some((l) => l.how === 'late'))
            for (const status of seen) if (status !== S.Unknown) expect(status).toBe(t.status);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('pushed instances and hosts: every location votes as before, whatever its deadline says', () => {
    const status = fc.constantFrom(S.Up, S.Down, S.Partial, S.Unknown, S.Stale, S.Paused);
    const location = fc.record({
      status,
      marked: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.constantFrom(TargetKind.Instance, TargetKind.Host),
        fc.array(location, { maxLength: 6 }),
        fc.integer({ min: 1, max: 100 }),
        (kind, ls, quorum) => {
          const locations: Record<string, LocationSnapshot> = {};
          ls.forEach((l, i) => {
            locations[`l${i}`] = {
              status: l.status,
              observedAt: 1,
              lastSeen: 1,
              latencyMs: null,
              detail: null,
              lifecycle: null,
              deadline: { at: 5, expireTo: S.Stale, reason: `no update${l.marked ? AWAITING_FIRST_RESULT : ''}` },
              run: null,
            };
          });
          expect(consensusOfLocations({ kind, downQuorumPct: null }, locations, { downQuorumPct: quorum })).toBe(
            consensusOf(
              ls.map((l) => l.status),
              { downQuorumPct: quorum },
            ),
          );
        },
      ),
    );
  });

  it('a location state from an aggregator before this (no mark) is not awaited: the first result decides, as before', () => {
    const start = resumed(['a', 'b', 'c'], 66);
    const unmarked: TargetSnapshot = {
      ...start,
      locations: Object.fromEntries(
        Object.entries(start.locations).map(([n, l]) => [n, { ...l, deadline: resumeDeadline }]),
      ),
    };
    expect(apply(unmarked, result('a', false, 9000), 66).target.status).toBe(S.Down);
  });

  it('a location that has a status is not awaited, whatever its deadline says (an aggregator from before kept the mark)', () => {
    // A replica from before folds a result with no deadline of its own (no interval): it keeps the marked one.
    const start = resumed(['a', 'b', 'c'], 66);
    const kept: TargetSnapshot = {
      ...start,
      locations: { ...start.locations, a: { ...start.locations.a, status: S.Down } },
    };
    expect(isAwaited(kept.locations.a)).toBe(false);
    expect(apply(kept, result('b', false, 9000), 66).target.status).toBe(S.Down);
  });

  it('a first result without a deadline of its own still ends the wait; one stamped before the resume does not', () => {
    const start = resumed(['a', 'b'], 100);
    const noDeadline = apply(start, result('a', true, 9000, false), 100).target;
    expect(noDeadline.locations.a.deadline?.reason).toBe(resumeDeadline.reason);
    expect(isAwaited(noDeadline.locations.a)).toBe(false);
    // Spooled while paused: older than the resume, it only proves life.
    const spooled = apply(start, result('a', false, 6000), 100).target;
    expect(isAwaited(spooled.locations.a)).toBe(true);
    expect(spooled.status).toBe(S.Unknown);
  });

  it('a location added to a check that goes by results is not awaited: a DOWN check stays DOWN, no flap', () => {
    let t = resumed(['a', 'b'], 100);
    t = apply(t, result('a', false, 9000), 100).target;
    t = apply(t, result('b', false, 9000), 100).target;
    expect(t.status).toBe(S.Down);
    const added = apply(
      t,
      lc('active', 4, 10_000, { locations: ['a', 'b', 'c'], checkIntervalSeconds: 30, downQuorumPct: 100 }),
      100,
    );
    expect(added.events).toEqual([]);
    expect(added.target.status).toBe(S.Down);
    expect(isAwaited(added.target.locations.c)).toBe(false);
    expect(apply(added.target, result('c', true, 11_000), 100).target.status).toBe(S.Partial);
  });

  it('a location added while all are still awaited is awaited too; a pause ends every wait', () => {
    const t = created(['a', 'b'], 66);
    const added = apply(t, lc('active', 2, 9000, { locations: ['a', 'b', 'c'], checkIntervalSeconds: 30 }), 66).target;
    expect(Object.values(added.locations).every(isAwaited)).toBe(true);
    const paused = apply(added, lc('paused', 3, 9500), 66).target;
    expect(Object.values(paused.locations).some(isAwaited)).toBe(false);
  });

  it('a quorum edit or a location dropped while awaiting does not decide on one vote', () => {
    let t = resumed(['a', 'b', 'c'], 66);
    t = apply(t, result('a', false, 9000), 66).target;
    const edited = apply(t, lc('active', 4, 9500, { downQuorumPct: 50 }), 66);
    expect(edited.target.status).toBe(S.Unknown);
    expect(edited.events).toEqual([]);
    const dropped = apply(t, lc('active', 4, 9500, { locations: ['a', 'b'] }), 66);
    expect(dropped.target.status).toBe(S.Unknown);
    expect(dropped.events.filter((e) => e.location === null)).toEqual([]);
    // Its last awaited location reports: decided.
    expect(apply(dropped.target, result('b', true, 9600), 66).target.status).toBe(S.Partial);
  });

  it('as many awaited locations as a check may have (64) are judged quickly', () => {
    const names = Array.from({ length: 64 }, (_, i) => `l${i}`);
    let t = resumed(names, 50);
    const started = Date.now();
    for (let i = 0; i < 32; i++) t = apply(t, result(names[i], false, 9000 + i), 50).target;
    expect(t.status).toBe(S.Down);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
