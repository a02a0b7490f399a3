import fc from 'fast-check';
import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { applyLifecycle, type CheckLifecycle } from './check-lifecycle';
import { consensusOf } from './consensus';
import { expireDeadlines } from './expiry';
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

/** One location's first step: its first result, or its deadline passing (the sweeper). */
function first(t: TargetSnapshot, location: string, step: FirstStep, at: number, quorum: number): TargetSnapshot {
  if (step === 'stale') {
    const l = t.locations[location];
    return applyExpiry(t, location, l.deadline?.at ?? DEADLINE, { downQuorumPct: quorum }).target;
  }
  return apply(t, result(location, step === 'up', at), quorum).target;
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
          order.reduce((t, i, k) => first(t, s.names[i], s.steps[i], 9000 + k, s.quorum), begin(s));
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
          if (at < k) t = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum);
        });
        seen.push(t.status);
        // Whatever the rest bring, in the order given: every verdict reached on the way is the final one.
        s.order.forEach((i, at) => {
          if (at >= k) {
            t = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum);
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
          const next = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum);
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
          if (s.steps[i] !== 'stale') t = first(t, s.names[i], s.steps[i], 9000 + at, s.quorum);
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
