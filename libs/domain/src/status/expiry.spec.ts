import { TargetKind, TargetStatus as S } from '@fleetwatch/contracts';
import { expireDeadlines, type DeadlineRef } from './expiry';
import { applyObservation, type Deadline, type LocationSnapshot, type TargetSnapshot } from './target-state';

const policy = { downQuorumPct: 100 };
const stale = (at: number): Deadline => ({ at, expireTo: S.Stale, reason: 'no update for 5s' });
const down = (at: number): Deadline => ({ at, expireTo: S.Down, reason: 'no ping within period 1s + grace 1s' });

/** A target built by folding one observation per location (so sequence and consensus are real). */
function target(id: string, locations: Array<[string, S, Deadline | null, LocationSnapshot['run']?]>): TargetSnapshot {
  let t: TargetSnapshot | undefined;
  locations.forEach(([location, status, deadline, run], i) => {
    t = applyObservation(
      t,
      {
        targetId: id,
        kind: TargetKind.Instance,
        name: id,
        location,
        at: 1000 + i,
        status,
        reason: 'update',
        deadline,
        run,
      },
      policy,
    ).target;
  });
  return t as TargetSnapshot;
}

const ref = (targetId: string, location: string): DeadlineRef => ({ targetId, location });
const states = (...ts: TargetSnapshot[]) => new Map(ts.map((t) => [t.id, t]));
const eventsOf = (o: ReturnType<typeof expireDeadlines>) =>
  o.events.map((e) => `${e.targetId}/${e.location ?? '*'}:${e.from}→${e.to}@${e.at}#${e.sequence}`);

describe('expireDeadlines', () => {
  const a = target('a', [['eu', S.Up, stale(5000)]]);
  const hb = target('hb', [['push', S.Up, down(3000), { startedAt: 2000, runId: 'r1' }]]);
  const two = target('two', [
    ['eu', S.Up, stale(6000)],
    ['us', S.Up, stale(5500)],
  ]);
  const none = target('none', [['eu', S.Up, null]]);

  it.each([
    // name, targets, candidates, now, expected events, expected deadlines after (target/location=at)
    ['before the deadline: nothing', [a], [ref('a', 'eu')], 4999, [], ['a/eu=5000']],
    [
      'at the deadline: location then consensus STALE, at the deadline time',
      [a],
      [ref('a', 'eu')],
      5000,
      ['a/eu:UP→STALE@5000#3', 'a/*:UP→STALE@5000#4'],
      ['a/eu=null'],
    ],
    [
      'long after the deadline: the events still carry the deadline time',
      [a],
      [ref('a', 'eu')],
      60_000,
      ['a/eu:UP→STALE@5000#3', 'a/*:UP→STALE@5000#4'],
      ['a/eu=null'],
    ],
    [
      'a repeated candidate expires once',
      [a],
      [ref('a', 'eu'), ref('a', 'eu')],
      5000,
      ['a/eu:UP→STALE@5000#3', 'a/*:UP→STALE@5000#4'],
      ['a/eu=null'],
    ],
    [
      'a heartbeat deadline is DOWN',
      [hb],
      [ref('hb', 'push')],
      3000,
      ['hb/push:UP→DOWN@3000#3', 'hb/*:UP→DOWN@3000#4'],
      ['hb/push=null'],
    ],
    [
      'a candidate without a deadline (cleared meanwhile) changes nothing',
      [none],
      [ref('none', 'eu')],
      9000,
      [],
      ['none/eu=null'],
    ],
    [
      'a candidate for an unknown target or location changes nothing',
      [a],
      [ref('gone', 'eu'), ref('a', 'ap')],
      9000,
      [],
      ['gone/eu=null', 'a/ap=null'],
    ],
    [
      'two locations due in one sweep expire in deadline order; the consensus turns once all are stale',
      [two],
      [ref('two', 'eu'), ref('two', 'us')],
      7000,
      ['two/us:UP→STALE@5500#4', 'two/eu:UP→STALE@6000#5', 'two/*:UP→STALE@6000#6'],
      ['two/eu=null', 'two/us=null'],
    ],
    [
      'one of two locations due: the other keeps the target UP',
      [two],
      [ref('two', 'us'), ref('two', 'eu')],
      5600,
      ['two/us:UP→STALE@5500#4'],
      ['two/us=null', 'two/eu=6000'],
    ],
    [
      'several targets: each numbered on from its own sequence, in deadline order',
      [a, hb],
      [ref('a', 'eu'), ref('hb', 'push')],
      5000,
      ['hb/push:UP→DOWN@3000#3', 'hb/*:UP→DOWN@3000#4', 'a/eu:UP→STALE@5000#3', 'a/*:UP→STALE@5000#4'],
      ['a/eu=null', 'hb/push=null'],
    ],
  ] as const)('%s', (_name, targets, candidates, now, events, after) => {
    const o = expireDeadlines(states(...targets), candidates, now, policy);
    expect(eventsOf(o)).toEqual(events);
    expect(o.deadlines.map((d) => `${d.targetId}/${d.location}=${d.at}`)).toEqual(after);
    expect(o.changed.map((t) => t.id)).toEqual([...new Set(o.events.map((e) => e.targetId))]);
  });

  it('the changed targets hold the expired state, keep the observation time and bump the sequence', () => {
    const o = expireDeadlines(states(a, none), [ref('a', 'eu'), ref('none', 'eu')], 5000, policy);
    expect(o.changed).toHaveLength(1);
    expect(o.changed[0]).toMatchObject({ id: 'a', status: S.Stale, since: 5000, seq: 4 });
    expect(o.changed[0].locations.eu).toMatchObject({ status: S.Stale, deadline: null, observedAt: 1000 });
  });

  it('reports a heartbeat run open at the deadline as timed out, finished at the deadline', () => {
    const o = expireDeadlines(states(hb), [ref('hb', 'push')], 9000, policy);
    expect(o.timedOutRuns).toEqual([
      { targetId: 'hb', location: 'push', startedAt: 2000, runId: 'r1', finishedAt: 3000 },
    ]);
    expect(o.changed[0].locations.push.run).toBeNull();
  });

  it('is idempotent: sweeping the result again changes nothing', () => {
    const first = expireDeadlines(
      states(a, hb, two),
      [ref('a', 'eu'), ref('hb', 'push'), ref('two', 'eu'), ref('two', 'us')],
      10_000,
      policy,
    );
    const after = new Map([a, hb, two].map((t) => [t.id, first.changed.find((c) => c.id === t.id) ?? t]));
    const second = expireDeadlines(
      after,
      [ref('a', 'eu'), ref('hb', 'push'), ref('two', 'eu'), ref('two', 'us')],
      20_000,
      policy,
    );
    expect(first.events).toHaveLength(7);
    expect(second).toMatchObject({ changed: [], events: [], timedOutRuns: [] });
  });

  it('leaves its input untouched', () => {
    const before = JSON.stringify([...states(a, two)]);
    const input = states(a, two);
    expireDeadlines(input, [ref('a', 'eu'), ref('two', 'us')], 10_000, policy);
    expect(JSON.stringify([...input])).toBe(before);
  });
});
