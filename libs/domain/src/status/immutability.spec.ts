import fc from 'fast-check';
import { TargetKind, TargetStatus } from '@fleetwatch/contracts';
import { expireDeadlines } from './expiry';
import { foldObservations, type FoldItem } from './fold';
import { sameLocation, type LocationSnapshot, type Observation, type TargetSnapshot } from './target-state';

// The aggregator writes back only the locations that differ from what it read (saveMany's `before`): that is sound
// only while the fold and the expiry never change the snapshots they are given. Deep-frozen inputs make any
// in-place change throw (modules run in strict mode), and the inputs must read the same afterwards.

const policy = { downQuorumPct: 100 };
const statuses = [TargetStatus.Up, TargetStatus.Down, TargetStatus.Stale, null] as const;

const observation: fc.Arbitrary<FoldItem> = fc
  .record({
    id: fc.uuid(),
    target: fc.constantFrom('a', 'b', 'c'),
    location: fc.constantFrom('eu', 'us', 'ap'),
    status: fc.constantFrom(...statuses),
    at: fc.integer({ min: 1, max: 10_000 }),
    deadline: fc.option(fc.integer({ min: 1, max: 20_000 }), { nil: undefined }),
    run: fc.option(fc.constant({ startedAt: 5, runId: 'r' }), { nil: undefined }),
    tags: fc.option(fc.array(fc.constantFrom('x', 'y'), { maxLength: 2 }), { nil: undefined }),
    latencyMs: fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }),
  })
  .map((o): FoldItem => ({
    type: 'observation',
    id: o.id,
    observation: {
      targetId: o.target,
      kind: TargetKind.Instance,
      name: o.target,
      location: o.location,
      at: o.at,
      status: o.status,
      reason: 'r',
      latencyMs: o.latencyMs,
      tags: o.tags,
      deadline:
        o.deadline === undefined ? undefined : { at: o.deadline, expireTo: TargetStatus.Stale, reason: 'quiet' },
      run: o.run,
    } satisfies Observation,
  }));

const ping: fc.Arbitrary<FoldItem> = fc
  .record({
    id: fc.uuid(),
    signal: fc.constantFrom('start', 'success', 'fail'),
    at: fc.integer({ min: 1, max: 10_000 }),
  })
  .map((p) => ({
    type: 'ping',
    id: p.id,
    targetId: 'hb',
    location: 'push',
    name: 'nightly',
    monitorId: 'm-1',
    ping: { signal: p.signal, at: p.at, runId: null, periodSeconds: 60, graceSeconds: 10, maxRuntimeSeconds: 30 },
  }));

const lifecycle: fc.Arbitrary<FoldItem> = fc
  .record({
    id: fc.uuid(),
    target: fc.constantFrom('a', 'b', 'c'),
    state: fc.constantFrom('active', 'paused', 'deleted'),
    version: fc.integer({ min: 1, max: 20 }),
    at: fc.integer({ min: 1, max: 10_000 }),
    resume: fc.boolean(),
  })
  .map((l) => ({
    type: 'lifecycle',
    id: l.id,
    lifecycle: {
      targetId: l.target,
      state: l.state,
      version: l.version,
      at: l.at,
      tags: ['t'],
      resumeDeadline: l.resume ? { at: l.at + 5_000, expireTo: TargetStatus.Stale, reason: 'resumed' } : null,
    },
  }));

const items = fc.array(fc.oneof(observation, ping, lifecycle), { minLength: 1, maxLength: 25 });

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const fresh = (list: readonly FoldItem[]) => new Set(list.map((i) => i.id));

describe('the fold and the expiry leave the snapshots they are given unchanged', () => {
  it('foldObservations and expireDeadlines over deep-frozen targets: no throw, the inputs read the same', () => {
    fc.assert(
      fc.property(items, items, fc.integer({ min: 0, max: 30_000 }), (first, second, now) => {
        const stored = foldObservations(new Map(), first, fresh(first), policy).targets;
        const snapshot = JSON.stringify([...stored]);
        const current: ReadonlyMap<string, TargetSnapshot> = new Map([...stored].map(([k, t]) => [k, deepFreeze(t)]));
        foldObservations(current, second, fresh(second), policy);
        const refs = [...current.values()].flatMap((t) =>
          Object.keys(t.locations).map((location) => ({ targetId: t.id, location })),
        );
        expireDeadlines(current, refs, now, policy);
        expect(JSON.stringify([...current])).toBe(snapshot);
      }),
      { numRuns: 500 },
    );
  });
});

describe('sameLocation', () => {
  const deadline = { at: 10, expireTo: TargetStatus.Stale, reason: 'quiet' };
  const base: LocationSnapshot = {
    status: TargetStatus.Up,
    observedAt: 1,
    lastSeen: 2,
    latencyMs: 3,
    detail: 'd',
    lifecycle: 'running',
    deadline,
    run: { startedAt: 1, runId: null },
  };

  it('is true for equal copies, false for absent ones or any field that differs', () => {
    expect(sameLocation(base, structuredClone(base))).toBe(true);
    expect(sameLocation(base, { ...base, deadline: null, run: null })).toBe(false);
    expect(sameLocation({ ...base, deadline: null, run: null }, { ...base, deadline: null, run: null })).toBe(true);
    expect(sameLocation(undefined, base)).toBe(false);
    expect(sameLocation(base, undefined)).toBe(false);
    const changes: Array<Partial<LocationSnapshot>> = [
      { status: TargetStatus.Down },
      { observedAt: 9 },
      { lastSeen: 9 },
      { latencyMs: null },
      { detail: null },
      { lifecycle: 'exited' },
      { deadline: { ...deadline, at: 11 } },
      { deadline: { ...deadline, expireTo: TargetStatus.Down } },
      { deadline: { ...deadline, reason: 'other' } },
      { run: { startedAt: 2, runId: null } },
      { run: { startedAt: 1, runId: 'x' } },
      { run: null },
    ];
    for (const change of changes) {
      expect({ change, same: sameLocation(base, { ...base, ...change }) }).toEqual({ change, same: false });
      expect({ change, same: sameLocation({ ...base, ...change }, base) }).toEqual({ change, same: false });
    }
  });
});
