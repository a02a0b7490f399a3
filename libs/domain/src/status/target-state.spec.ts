import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { heartbeatStep, type HeartbeatPing } from './heartbeat';
import {
  applyExpiry,
  applyObservation,
  CONTRADICTED_BY_OLDER,
  tagsOfLabels,
  type Observation,
  type TargetSnapshot,
} from './target-state';

const policy = { downQuorumPct: 100 };
const obs = (location: string, status: S | null, at: number, extra: Partial<Observation> = {}): Observation => ({
  targetId: 'check:c1',
  kind: TargetKind.Check,
  name: 'c1',
  location,
  at,
  status,
  reason: 'result',
  ...extra,
});

function fold(observations: Observation[], start?: TargetSnapshot, quorum = 100) {
  let target = start;
  const events = [];
  for (const o of observations) {
    const r = applyObservation(target, o, { downQuorumPct: quorum });
    target = r.target;
    events.push(...r.events);
  }
  return { target: target as TargetSnapshot, events };
}

describe('applyObservation', () => {
  it('a first observation emits location and consensus events numbered 1, 2', () => {
    const { target, events } = fold([obs('eu', S.Up, 1000)]);
    expect(events.map((e) => [e.location, e.from, e.to, e.sequence])).toEqual([
      ['eu', S.Unknown, S.Up, 1],
      [null, S.Unknown, S.Up, 2],
    ]);
    expect(target).toMatchObject({ status: S.Up, since: 1000, lastSeen: 1000, seq: 2 });
  });

  it.each([
    // [statuses per location in order, quorum, expected consensus]
    [
      [
        ['eu', S.Up],
        ['us', S.Down],
      ],
      100,
      S.Partial,
    ],
    [
      [
        ['eu', S.Up],
        ['us', S.Down],
      ],
      50,
      S.Down,
    ],
    [
      [
        ['eu', S.Up],
        ['us', S.Up],
        ['ap', S.Down],
      ],
      50,
      S.Partial,
    ],
    [
      [
        ['eu', S.Down],
        ['us', S.Down],
      ],
      100,
      S.Down,
    ],
  ] as const)('locations %j with quorum %d%% → %s', (pairs, quorum, expected) => {
    const { target } = fold(
      pairs.map(([loc, st], i) => obs(loc, st, 1000 + i)),
      undefined,
      quorum,
    );
    expect(target.status).toBe(expected);
  });

  it('numbers events monotonically across transitions', () => {
    const { events } = fold([obs('eu', S.Up, 1), obs('us', S.Down, 2), obs('us', S.Up, 3), obs('eu', S.Up, 4)]);
    expect(events.map((e) => e.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(events.map((e) => `${e.location ?? '*'}:${e.to}`)).toEqual([
      'eu:UP',
      '*:UP',
      'us:DOWN',
      '*:PARTIAL',
      'us:UP',
      '*:UP',
    ]);
  });

  it('an older observation never moves state back, but counts as seen', () => {
    const first = fold([obs('eu', S.Down, 2000)]);
    const r = applyObservation(first.target, obs('eu', S.Up, 1000), policy);
    expect(r.applied).toBe(false);
    expect(r.events).toEqual([]);
    expect(r.target.locations.eu.status).toBe(S.Down);
    const late = applyObservation(first.target, obs('eu', S.Up, 3000), policy);
    expect(late.target.locations.eu.lastSeen).toBe(3000);
  });

  it('keeps tags, labels and deadline unless the observation sets them', () => {
    const deadline = { at: 9000, expireTo: S.Stale, reason: 'nothing heard' };
    const { target } = fold([obs('eu', S.Up, 1, { tags: ['a=1'], labels: { a: '1' }, deadline }), obs('eu', S.Up, 2)]);
    expect(target.tags).toEqual(['a=1']);
    expect(target.labels).toEqual({ a: '1' });
    expect(target.locations.eu.deadline).toEqual(deadline);
  });
});

describe("a sender's clock stepped back: observations stamped before the held state keep arriving", () => {
  const WINDOW_MS = 25_000;
  const STEP_MS = 10 * 60_000;
  /** An observation as the aggregator maps it: its STALE deadline counts from when it was heard (or its stamp, later). */
  const heard = (location: string, status: S, stamp: number, heardAt: number, kind = TargetKind.Check) =>
    obs(location, status, stamp, {
      kind,
      deadline: { at: Math.max(stamp, heardAt) + WINDOW_MS, expireTo: S.Stale, reason: 'no result within 2 × 10s' },
    });
  /**
   * Folds one observation a second from `from` for `seconds`, stamped `offset` ms from when heard, sweeping each
   * second as the sweeper does; returns the target and every event.
   */
  function run(start: TargetSnapshot, from: number, seconds: number, offset: number, status: (i: number) => S) {
    let target = start;
    const events = [];
    for (let i = 0; i < seconds; i++) {
      const now = from + i * 1000;
      const r = applyObservation(target, heard('eu', status(i), now + offset, now, target.kind), policy);
      const swept = applyExpiry(r.target, 'eu', now + 500, policy);
      target = swept.target;
      events.push(...r.events, ...swept.events);
    }
    return { target, events };
  }

  it.each([TargetKind.Check, TargetKind.Host])(
    '%s: stamped 10 min before the last one, arriving every second for 3 windows: never STALE',
    (kind) => {
      const t0 = 1_700_000_000_000;
      const before = run(fold([heard('eu', S.Up, t0, t0, kind)]).target, t0 + 1000, 30, 0, () => S.Up);
      const after = run(before.target, t0 + 31_000, 90, -STEP_MS, () => S.Up);
      expect(after.events).toEqual([]);
      expect(after.target.locations.eu.status).toBe(S.Up);
      // The held state is still the last one stamped before the step (ordered: an older stamp does not move it)…
      expect(after.target.locations.eu.observedAt).toBe(t0 + 30_000);
      // … and its deadline counts from the last one heard.
      expect(after.target.locations.eu.deadline?.at).toBe(t0 + 120_000 + WINDOW_MS);
      // Silence after that: STALE one window after the last one heard, as without the step.
      const silent = applyExpiry(after.target, 'eu', t0 + 120_000 + WINDOW_MS, policy);
      expect(silent.events.map((e) => e.to)).toEqual([S.Stale, S.Stale]);
    },
  );

  it('one that says another status than the held one does not hold it: STALE after one window, not a contradicted UP', () => {
    const t0 = 1_700_000_000_000;
    const up = fold([heard('eu', S.Up, t0, t0)]).target;
    const after = run(up, t0 + 1000, 60, -STEP_MS, () => S.Down);
    expect(after.events.map((e) => [e.location, e.to, e.at])).toEqual([
      ['eu', S.Stale, t0 + WINDOW_MS],
      [null, S.Stale, t0 + WINDOW_MS],
    ]);
  });

  it('a target failing 19 runs in 20 is not held UP by the one that passes: once contradicted, agreeing ones stop moving the deadline', () => {
    const t0 = 1_700_000_000_000;
    const up = fold([heard('eu', S.Up, t0, t0)]).target;
    // Stamped 10 min back, one a second: UP, then 19 DOWN, then UP… (a flapping target, a collector whose clock
    // stepped back). Held UP, the passing ones moved its deadline past every window: UP for the whole 10 min.
    const after = run(up, t0 + 1000, 120, -STEP_MS, (i) => (i % 20 === 0 ? S.Up : S.Down));
    // STALE one window after the last one that agreed before the first that did not (t0 + 1 s), saying why.
    expect(after.events.map((e) => [e.location, e.to, e.at])).toEqual([
      ['eu', S.Stale, t0 + 1000 + WINDOW_MS],
      [null, S.Stale, t0 + 1000 + WINDOW_MS],
    ]);
    expect(after.events[0].reason).toBe(`no result within 2 × 10s${CONTRADICTED_BY_OLDER}`);
    expect(after.target.locations.eu.status).toBe(S.Stale);

    // A newer one takes the location (and its own deadline, unmarked): older agreeing ones hold it again.
    const t1 = t0 + 200_000;
    const back = applyObservation(up, heard('eu', S.Down, t0 - STEP_MS, t0 + 1000), policy).target;
    expect(back.locations.eu.deadline?.reason).toBe(`no result within 2 × 10s${CONTRADICTED_BY_OLDER}`);
    const newer = applyObservation(back, heard('eu', S.Up, t0 + 5000, t0 + 5000), policy).target;
    const held = applyObservation(newer, heard('eu', S.Up, t0 - STEP_MS + 10_000, t1), policy).target;
    expect(held.locations.eu.deadline).toEqual({
      at: t1 + WINDOW_MS,
      expireTo: S.Stale,
      reason: 'no result within 2 × 10s',
    });
  });

  it('a late older result (out of order) moves the deadline at most one window from when it was heard', () => {
    const t0 = 1_700_000_000_000;
    const held = fold([heard('eu', S.Up, t0, t0)]).target;
    const late = applyObservation(held, heard('eu', S.Up, t0 - 3_600_000, t0 + 20_000), policy);
    expect(late.applied).toBe(false);
    expect(late.target.locations.eu.deadline?.at).toBe(t0 + 20_000 + WINDOW_MS);
    // Never earlier: one heard before the held deadline's start leaves it.
    const early = applyObservation(late.target, heard('eu', S.Up, t0 - 7_200_000, t0 + 1000), policy);
    expect(early.target.locations.eu.deadline?.at).toBe(t0 + 20_000 + WINDOW_MS);
  });
});

describe('applyExpiry', () => {
  const deadline = { at: 5000, expireTo: S.Stale, reason: 'nothing heard for 5s' };
  const start = fold([obs('eu', S.Up, 1000, { deadline })]).target;

  it('is a no-op before the deadline', () => {
    expect(applyExpiry(start, 'eu', 4999, policy)).toMatchObject({ applied: false, events: [] });
  });
  it('turns the location (and consensus) STALE at the deadline, keeping the observation time', () => {
    const r = applyExpiry(start, 'eu', 5000, policy);
    expect(r.events.map((e) => [e.location, e.from, e.to, e.reason, e.sequence])).toEqual([
      ['eu', S.Up, S.Stale, 'nothing heard for 5s', 3],
      [null, S.Up, S.Stale, 'location eu: nothing heard for 5s', 4],
    ]);
    expect(r.target.locations.eu).toMatchObject({ status: S.Stale, deadline: null, observedAt: 1000 });
    // A newer observation revives it.
    const revived = applyObservation(r.target, obs('eu', S.Up, 6000), policy);
    expect(revived.target.status).toBe(S.Up);
  });
  it('a stale location does not pull a reporting one down', () => {
    const two = fold([obs('us', S.Up, 1000)], start).target;
    const r = applyExpiry(two, 'eu', 6000, policy);
    expect(r.target.status).toBe(S.Up);
    expect(r.events.map((e) => e.location)).toEqual(['eu']);
  });
});

describe("a target's own quorum (a check's downQuorumPct)", () => {
  const three = (q: number | null | undefined) =>
    fold([
      obs('eu', S.Up, 1000, { downQuorumPct: q }),
      obs('us', S.Up, 1001, { downQuorumPct: q }),
      obs('ap', S.Up, 1002, { downQuorumPct: q }),
    ]).target;

  it('one of three locations down is PARTIAL with the site default (100 %), DOWN with a 30 % quorum of its own', () => {
    expect(applyObservation(three(undefined), obs('eu', S.Down, 2000), policy).target.status).toBe(S.Partial);
    const own = applyObservation(three(30), obs('eu', S.Down, 2000, { downQuorumPct: 30 }), policy).target;
    expect(own).toMatchObject({ status: S.Down, downQuorumPct: 30 });
  });
  it('is kept by observations that do not carry one, and null returns to the site default', () => {
    const kept = applyObservation(three(30), obs('eu', S.Down, 2000), policy).target;
    expect(kept).toMatchObject({ status: S.Down, downQuorumPct: 30 });
    const reset = applyObservation(kept, obs('us', S.Up, 3000, { downQuorumPct: null }), policy).target;
    expect(reset).toMatchObject({ status: S.Partial, downQuorumPct: null });
  });
  it('an older observation does not change it', () => {
    const t = applyObservation(three(30), obs('eu', S.Up, 500, { downQuorumPct: 90 }), policy).target;
    expect(t.downQuorumPct).toBe(30);
  });
  it('the sweeper uses it too: a location going STALE then DOWN judged by the target quorum', () => {
    const deadline = { at: 5000, expireTo: S.Down, reason: 'missed' };
    const t = fold([
      obs('eu', S.Up, 1000, { downQuorumPct: 50, deadline }),
      obs('us', S.Up, 1001, { downQuorumPct: 50 }),
    ]).target;
    expect(applyExpiry(t, 'eu', 5000, policy).target.status).toBe(S.Down);
    const siteOnly = fold([obs('eu', S.Up, 1000, { deadline }), obs('us', S.Up, 1001)]).target;
    expect(applyExpiry(siteOnly, 'eu', 5000, policy).target.status).toBe(S.Partial);
  });
});

describe('heartbeatStep', () => {
  const ping = (signal: HeartbeatPing['signal'], at: number, extra: Partial<HeartbeatPing> = {}): HeartbeatPing => ({
    signal,
    at,
    runId: null,
    periodSeconds: 60,
    graceSeconds: 10,
    maxRuntimeSeconds: null,
    ...extra,
  });
  const hb = (steps: HeartbeatPing[]) => {
    let target: TargetSnapshot | undefined;
    const finished = [];
    for (const p of steps) {
      const step = heartbeatStep(target?.locations.push, p);
      if (step.finished) finished.push(step.finished);
      target = applyObservation(
        target,
        obs('push', step.status, p.at, { reason: step.reason, deadline: step.deadline, run: step.run }),
        policy,
      ).target;
    }
    return { target: target as TargetSnapshot, finished };
  };

  it.each([
    ['success is UP with a deadline of period + grace', [ping('success', 1000)], S.Up, 71_000],
    ['fail is DOWN at once with no deadline', [ping('success', 1000), ping('fail', 2000)], S.Down, null],
    [
      'start keeps the status and expects the finish by max runtime',
      [ping('success', 1000), ping('start', 2000, { maxRuntimeSeconds: 30 })],
      S.Up,
      32_000,
    ],
    ['start without max runtime expects a ping by period + grace', [ping('start', 2000)], S.Unknown, 72_000],
  ] as const)('%s', (_name, steps, status, deadlineAt) => {
    const { target } = hb([...steps]);
    expect(target.locations.push.status).toBe(status);
    expect(target.locations.push.deadline?.at ?? null).toBe(deadlineAt);
    if (deadlineAt !== null) expect(target.locations.push.deadline?.expireTo).toBe(S.Down);
  });

  it('records the run from start to success or fail', () => {
    const { finished, target } = hb([
      ping('start', 1000, { runId: 'r1' }),
      ping('success', 4500, { runId: 'r1' }),
      ping('start', 5000),
      ping('fail', 5200),
    ]);
    expect(finished).toEqual([
      { startedAt: 1000, finishedAt: 4500, durationMs: 3500, outcome: 'ok' },
      { startedAt: 5000, finishedAt: 5200, durationMs: 200, outcome: 'fail' },
    ]);
    expect(target.locations.push.run).toBeNull();
  });

  it('a finishing ping of another run leaves the open run', () => {
    const { finished, target } = hb([ping('start', 1000, { runId: 'r1' }), ping('success', 2000, { runId: 'r2' })]);
    expect(finished).toEqual([]);
    expect(target.locations.push.run).toEqual({ startedAt: 1000, runId: 'r1' });
  });

  it('a run past max runtime turns DOWN at the sweep and is reported as timed out', () => {
    const { target } = hb([ping('success', 1000), ping('start', 2000, { maxRuntimeSeconds: 5 })]);
    const r = applyExpiry(target, 'push', 7000, policy);
    expect(r.target.locations.push.status).toBe(S.Down);
    expect(r.timedOutRun).toEqual({ startedAt: 2000, runId: null });
  });
});

describe('tagsOfLabels', () => {
  it('renders key=value, sorted; undefined keeps tags', () => {
    expect(tagsOfLabels({ team: 'a', env: 'prod' })).toEqual(['env=prod', 'team=a']);
    expect(tagsOfLabels(undefined)).toBeUndefined();
  });
});

describe("applyObservation: a pushed instance 'removed' (a pod deleted, a container removed)", () => {
  const inst = (status: S | null, at: number, lifecycle: string, extra: Partial<Observation> = {}): Observation =>
    obs('cluster', status, at, {
      targetId: 'instance:web-1',
      kind: TargetKind.Instance,
      name: 'web-1',
      lifecycle,
      ...extra,
    });

  it('leaves live state: no location, no deadline; history kept by the caller; UNKNOWN, said by events', () => {
    const running = fold([inst(S.Up, 1000, 'running', { deadline: { at: 301_000, expireTo: S.Stale, reason: 'q' } })]);
    const r = applyObservation(
      running.target,
      inst(S.Unknown, 2000, 'removed', { reason: 'removed: pod deleted' }),
      policy,
    );
    expect(r.applied).toBe(true);
    // The alert evaluator follows status.changed events: without them it kept the instance at its last status
    // (a pod terminating is DOWN) until its next full read, and 'Target down' fired for a pod that is gone.
    expect(r.events.map((e) => [e.location, e.from, e.to, e.sequence, e.at, e.reason])).toEqual([
      ['cluster', S.Up, S.Unknown, running.target.seq + 1, 2000, 'removed: pod deleted'],
      [null, S.Up, S.Unknown, running.target.seq + 2, 2000, 'location cluster: removed: pod deleted'],
    ]);
    expect(r.target).toMatchObject({
      deletedAt: 2000,
      locations: {},
      lastSeen: 2000,
      status: S.Unknown,
      since: 2000,
      seq: running.target.seq + 2,
    });
    // Nothing can expire: no location holds a deadline.
    expect(applyExpiry(r.target, 'cluster', 400_000, policy).applied).toBe(false);
  });

  it('an update older than the removal changes nothing; a newer one brings it back, its events numbered on', () => {
    const running = fold([inst(S.Up, 1000, 'running')]);
    const removed = applyObservation(running.target, inst(S.Unknown, 2000, 'removed'), policy).target;
    for (const at of [1500, 2000]) {
      const late = applyObservation(removed, inst(S.Up, at, 'running'), policy);
      expect(late).toEqual({ target: removed, events: [], applied: false });
    }
    const back = applyObservation(removed, inst(S.Down, 3000, 'exited'), policy);
    expect(back.applied).toBe(true);
    expect(back.target.deletedAt ?? null).toBeNull();
    expect(back.target).toMatchObject({ status: S.Down, since: 3000, lastSeen: 3000 });
    expect(back.events.map((e) => [e.location, e.from, e.to, e.sequence])).toEqual([
      ['cluster', S.Unknown, S.Down, removed.seq + 1],
      [null, S.Unknown, S.Down, removed.seq + 2],
    ]);
  });

  it('a removal older than the state held is a late one of an earlier life: it changes nothing', () => {
    const running = fold([inst(S.Up, 5000, 'running')]);
    const late = applyObservation(running.target, inst(S.Unknown, 4000, 'removed'), policy);
    expect(late).toEqual({ target: running.target, events: [], applied: false });
  });

  it('a removal of an instance never seen is kept (a later, older update does not create it)', () => {
    const r = applyObservation(undefined, inst(S.Unknown, 2000, 'removed'), policy);
    expect(r.target).toMatchObject({ id: 'instance:web-1', deletedAt: 2000, locations: {} });
    expect(applyObservation(r.target, inst(S.Up, 1000, 'running'), policy).applied).toBe(false);
  });

  it('reported from two locations, removed at one: only that location goes; removed at the other too: retired', () => {
    // The same instance id from two watchers (two clusters' default/web-0 without a prefix): a rollout in one
    // must not take the other's state with it (it came back only with that location's next update).
    const both = fold([inst(S.Up, 1000, 'running'), inst(S.Down, 1100, 'exited', { location: 'us' })]);
    expect(both.target.status).toBe(S.Partial);
    const one = applyObservation(both.target, inst(S.Unknown, 2000, 'removed'), policy);
    expect(one.applied).toBe(true);
    expect(one.target.deletedAt ?? null).toBeNull();
    expect(Object.keys(one.target.locations)).toEqual(['us']);
    expect(one.target).toMatchObject({ status: S.Down, since: 2000, lastSeen: 2000 });
    expect(one.events.map((e) => [e.location, e.from, e.to, e.sequence])).toEqual([
      ['cluster', S.Up, S.Unknown, both.target.seq + 1],
      [null, S.Partial, S.Down, both.target.seq + 2],
    ]);
    // A late removal at 'us' (older than its state) changes nothing; a removal at a location it does not report
    // from neither.
    expect(applyObservation(one.target, inst(S.Unknown, 1050, 'removed', { location: 'us' }), policy).applied).toBe(
      false,
    );
    expect(applyObservation(one.target, inst(S.Unknown, 3000, 'removed', { location: 'ap' }), policy).applied).toBe(
      false,
    );
    const gone = applyObservation(one.target, inst(S.Unknown, 3000, 'removed', { location: 'us' }), policy);
    expect(gone.target).toMatchObject({ deletedAt: 3000, locations: {}, status: S.Unknown });
  });

  it("a deleted check's tombstone still never comes back, whatever its results say", () => {
    const tomb: TargetSnapshot = { ...fold([obs('eu', S.Up, 1000)]).target, locations: {}, deletedAt: 2000 };
    expect(applyObservation(tomb, obs('eu', S.Up, 9000), policy).applied).toBe(false);
    expect(applyObservation(tomb, obs('eu', S.Up, 9000, { lifecycle: 'removed' }), policy).applied).toBe(false);
  });
});
