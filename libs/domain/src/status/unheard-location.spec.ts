import fc from 'fast-check';
import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { applyLifecycle, type CheckLifecycle } from './check-lifecycle';
import { expireDeadlines } from './expiry';
import {
  applyExpiry,
  applyObservation,
  consensusOfLocations,
  isTombstone,
  type Observation,
  type StatusEventDraft,
  type TargetSnapshot,
} from './target-state';
import { checkResult, lifecycleOf } from './status.spec-helpers';

// A location added to a check that already goes by results waits UNKNOWN for its first result (never heard), and is
// not awaited: it neither votes nor holds anything back until it reports (check-lifecycle awaitingConfigured). It did
// vote in one case: beside locations that had all gone STALE it turned the consensus UNKNOWN — the check read UNKNOWN,
// not STALE ('Target stale' did not fire, or resolved), until the added location's own deadline passed, up to two
// intervals after the edit.

const ID = 'check:0191d7a2-0000-7000-8000-0000000a11ed';
const lc = lifecycleOf(ID);
const result = (location: string, ok: boolean, at: number): Observation => ({
  ...checkResult(ID, location, ok, at),
  deadline: { at: at + 125_000, expireTo: S.Stale, reason: 'no result within 2 × 60s' },
  peersDueBy: at + 70_000,
});

function step(
  t: TargetSnapshot | undefined,
  s: Observation | CheckLifecycle,
  policy = { downQuorumPct: 100 },
): { target: TargetSnapshot; events: StatusEventDraft[] } {
  return 'state' in s ? applyLifecycle(t, s, policy) : applyObservation(t, s, policy);
}

function run(steps: Array<Observation | CheckLifecycle>): TargetSnapshot {
  let t: TargetSnapshot | undefined;
  for (const s of steps) t = step(t, s).target;
  return t as TargetSnapshot;
}

/** eu and us report UP at 1 s (due again by 126 s); ap is added at 30 s (due by 155 s), its collector never reports. */
const withApAdded = () =>
  run([
    lc('active', 1, 0, { locations: ['eu', 'us'], checkIntervalSeconds: 60 }),
    result('eu', true, 1000),
    result('us', true, 1000),
    lc('active', 2, 30_000, { locations: ['eu', 'us', 'ap'], checkIntervalSeconds: 60 }),
  ]);

describe('a location added to a check going by results, never heard from yet', () => {
  it('does not stop the check reading STALE when every location that reported has gone quiet', () => {
    const t = withApAdded();
    expect(t.status).toBe(S.Up);
    const swept = expireDeadlines(
      new Map([[ID, t]]),
      [
        { targetId: ID, location: 'eu' },
        { targetId: ID, location: 'us' },
      ],
      126_000,
      { downQuorumPct: 100 },
    );
    const after = swept.changed[0];
    expect(Object.fromEntries(Object.entries(after.locations).map(([l, x]) => [l, x.status]))).toEqual({
      eu: S.Stale,
      us: S.Stale,
      ap: S.Unknown,
    });
    expect(after.status).toBe(S.Stale);
    expect(swept.events.filter((e) => e.location === null).map((e) => [e.from, e.to])).toEqual([[S.Up, S.Stale]]);
    // Its own deadline then passes: STALE still, no event for the consensus.
    const later = applyExpiry(after, 'ap', 155_000, { downQuorumPct: 100 });
    expect(later.target.status).toBe(S.Stale);
    expect(later.events.filter((e) => e.location === null)).toEqual([]);
  });

  it('does not turn a STALE check UNKNOWN when its quorum is edited (nor resolve its stale alert)', () => {
    const stale = expireDeadlines(
      new Map([[ID, withApAdded()]]),
      [
        { targetId: ID, location: 'eu' },
        { targetId: ID, location: 'us' },
      ],
      126_000,
      { downQuorumPct: 100 },
    ).changed[0];
    const edited = step(
      stale,
      lc('active', 3, 130_000, { locations: ['eu', 'us', 'ap'], checkIntervalSeconds: 60, downQuorumPct: 50 }),
    );
    expect(edited.target.status).toBe(S.Stale);
    expect(edited.events).toEqual([]);
  });

  it('votes once it reports, as any location', () => {
    const t = step(withApAdded(), result('ap', false, 40_000)).target;
    expect(t.status).toBe(S.Partial);
  });
});

describe('a location UNKNOWN and never seen whose state holds a time (observedAt)', () => {
  // An older result moves its lastSeen alone, and the consensus is not judged again then: the location must vote, or
  // not, the same before and after, or the stored consensus is no longer its locations' (a quorum edit then moves it).
  function expectStoredIsConsensus(t: TargetSnapshot): void {
    expect(t.status).toBe(t.paused ? S.Paused : consensusOfLocations(t, t.locations, { downQuorumPct: 100 }));
  }

  it('after a resume without an interval (no deadline), an older result from it moves no consensus', () => {
    let t = run([
      lc('active', 1, 0, { locations: ['eu', 'us'], checkIntervalSeconds: 60 }),
      result('eu', true, 1000),
      result('us', true, 1000),
      lc('active', 2, 30_000, { locations: ['eu', 'us', 'ap'], checkIntervalSeconds: 60 }),
      lc('paused', 3, 40_000),
      // A sender without the interval: nothing due, nothing awaited.
      lc('active', 4, 50_000, { resumeDeadline: null }),
      result('eu', true, 60_000),
      result('us', true, 60_000),
    ]);
    expect(t.locations.ap).toMatchObject({ status: S.Unknown, observedAt: 50_000, lastSeen: 0, deadline: null });
    t = expireDeadlines(
      new Map([[ID, t]]),
      [
        { targetId: ID, location: 'eu' },
        { targetId: ID, location: 'us' },
      ],
      200_000,
      { downQuorumPct: 100 },
    ).changed[0];
    expectStoredIsConsensus(t);
    // ap's collector flushes a result it ran while the check was paused: older than the resume, it moves lastSeen.
    const late = step(t, result('ap', false, 45_000));
    expect(late.events).toEqual([]);
    expect(late.target.locations.ap).toMatchObject({ status: S.Unknown, lastSeen: 45_000 });
    expectStoredIsConsensus(late.target);
    const edited = step(
      late.target,
      lc('active', 5, 210_000, { locations: ['eu', 'us', 'ap'], checkIntervalSeconds: 60, downQuorumPct: 50 }),
    );
    expect(edited.events).toEqual([]);
  });

  it('added by a version that dated it with the edit, an older result from it moves no consensus', () => {
    // An aggregator from before observedAt 0 set the edit's time on a location added: a result stamped before it (a
    // collector whose clock is behind the configuration owner's) is older, and moves lastSeen alone.
    const added = withApAdded();
    let t: TargetSnapshot = {
      ...added,
      locations: { ...added.locations, ap: { ...added.locations.ap, observedAt: 30_000 } },
    };
    t = expireDeadlines(
      new Map([[ID, t]]),
      [
        { targetId: ID, location: 'eu' },
        { targetId: ID, location: 'us' },
      ],
      126_000,
      { downQuorumPct: 100 },
    ).changed[0];
    expectStoredIsConsensus(t);
    const late = step(t, result('ap', true, 29_000));
    expect(late.events).toEqual([]);
    expectStoredIsConsensus(late.target);
    const edited = step(
      late.target,
      lc('active', 3, 130_000, { locations: ['eu', 'us', 'ap'], checkIntervalSeconds: 60, downQuorumPct: 50 }),
    );
    expect(edited.events).toEqual([]);
  });
});

const LOCATIONS = ['a', 'b', 'c'];

/** One thing that happens to the check: a result (`dt` s after the previous step; negative: a late one), a sweep, an edit. */
type Step =
  | { kind: 'result'; location: string; ok: boolean; dt: number }
  | { kind: 'sweep'; dt: number }
  | {
      kind: 'edit';
      state: 'active' | 'paused';
      locations: string[] | undefined;
      quorum: number | null | undefined;
      dt: number;
    };

const steps = fc.array(
  fc.oneof<fc.Arbitrary<Step>[]>(
    fc.record({
      kind: fc.constant('result' as const),
      location: fc.constantFrom(...LOCATIONS),
      ok: fc.boolean(),
      dt: fc.integer({ min: -150, max: 150 }),
    }),
    fc.record({ kind: fc.constant('sweep' as const), dt: fc.integer({ min: 0, max: 150 }) }),
    fc.record({
      kind: fc.constant('edit' as const),
      state: fc.constantFrom<'active' | 'paused'>('active', 'active', 'paused'),
      locations: fc.option(fc.subarray(LOCATIONS), { nil: undefined }),
      quorum: fc.option(fc.option(fc.integer({ min: 1, max: 100 }), { nil: null }), { nil: undefined }),
      dt: fc.integer({ min: 0, max: 150 }),
    }),
  ),
  { minLength: 1, maxLength: 14 },
);

describe("a check's status is the consensus of its locations", () => {
  it('after any results (late ones too), sweeps and edits (locations, quorum, pause, resume), with gap-free events', () => {
    fc.assert(
      fc.property(steps, fc.integer({ min: 1, max: 100 }), (script, siteQuorum) => {
        const policy = { downQuorumPct: siteQuorum };
        let t: TargetSnapshot | undefined;
        let now = 1_000_000;
        let version = 0;
        for (const s of script) {
          const at = now + s.dt * 1000;
          if (s.kind !== 'result' || s.dt > 0) now = at;
          const seq = t?.seq ?? 0;
          let events: StatusEventDraft[];
          if (s.kind === 'result') ({ target: t, events } = step(t, result(s.location, s.ok, at), policy));
          else if (s.kind === 'sweep') {
            if (t === undefined) continue;
            const swept = expireDeadlines(
              new Map([[ID, t]]),
              Object.keys(t.locations).map((location) => ({ targetId: ID, location })),
              now,
              policy,
            );
            t = swept.changed[0] ?? t;
            events = swept.events;
          } else {
            const edit = lc(s.state, ++version, now, {
              checkIntervalSeconds: 60,
              resumeDeadline: {
                at: now + 125_000,
                expireTo: S.Stale,
                reason: 'no result within 2 × 60s of the resume',
              },
              ...(s.locations !== undefined ? { locations: s.locations } : {}),
              ...(s.quorum !== undefined ? { downQuorumPct: s.quorum } : {}),
            });
            ({ target: t, events } = step(t, edit, policy));
          }
          expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => seq + i + 1));
          expect(t.seq).toBe(seq + events.length);
          if (isTombstone(t)) continue;
          expect(t.status).toBe(t.paused ? S.Paused : consensusOfLocations(t, t.locations, policy));
        }
      }),
      { numRuns: 600 },
    );
  });

  it('a location never heard from and not awaited changes no consensus', () => {
    const heard = fc.constantFrom(S.Up, S.Down, S.Stale, S.Unknown);
    fc.assert(
      fc.property(fc.array(heard, { maxLength: 6 }), fc.integer({ min: 1, max: 100 }), (statuses, quorum) => {
        const base: TargetSnapshot = {
          ...run([lc('active', 1, 0, {})]),
          kind: TargetKind.Check,
          downQuorumPct: quorum,
          locations: Object.fromEntries(
            statuses.map((status, i) => [
              `l${i}`,
              {
                status,
                observedAt: 1000,
                lastSeen: 1000,
                latencyMs: null,
                detail: null,
                lifecycle: null,
                deadline: null,
                run: null,
              },
            ]),
          ),
        };
        const added = {
          ...base.locations,
          added: { ...withApAdded().locations.ap },
        };
        const policy = { downQuorumPct: 100 };
        expect(consensusOfLocations(base, added, policy)).toBe(consensusOfLocations(base, base.locations, policy));
      }),
      { numRuns: 500 },
    );
  });
});

describe("a check's consensus over the latest result of each location", () => {
  it('does not depend on the order results arrive in, nor on redeliveries (created first, or not told yet)', () => {
    // Distinct times at a location: two results stamped the same millisecond there are taken in arrival order.
    const results = fc.uniqueArray(
      fc.record({
        location: fc.constantFrom('a', 'b', 'c', 'd'),
        ok: fc.boolean(),
        at: fc.integer({ min: 1, max: 600 }),
      }),
      { minLength: 1, maxLength: 10, selector: (r) => `${r.location}:${r.at}` },
    );
    fc.assert(
      fc.property(
        results,
        fc.integer({ min: 1, max: 100 }),
        fc.boolean(),
        fc.func(fc.integer()),
        (rs, quorum, created, shuffle) => {
          const policy = { downQuorumPct: quorum };
          const fold = (order: typeof rs) => {
            let t: TargetSnapshot | undefined = created
              ? step(
                  undefined,
                  lc('active', 1, 0, { locations: ['a', 'b', 'c', 'd'], checkIntervalSeconds: 60 }),
                  policy,
                ).target
              : undefined;
            for (const r of order) t = step(t, result(r.location, r.ok, r.at * 1000), policy).target;
            return t as TargetSnapshot;
          };
          const inOrder = fold([...rs].sort((x, y) => x.at - y.at));
          const redelivered = [...rs, ...rs.filter((_, i) => shuffle(i) % 3 === 0)];
          const arrived = fold(redelivered.sort((x, y) => shuffle(x.at) - shuffle(y.at) || x.at - y.at));
          const view = (t: TargetSnapshot) => [
            t.status,
            Object.fromEntries(Object.entries(t.locations).map(([l, x]) => [l, x.status])),
          ];
          expect(view(arrived)).toEqual(view(inOrder));
        },
      ),
      { numRuns: 500 },
    );
  });
});
