import fc from 'fast-check';
import { TargetKind, TargetStatus as S, type CheckLifecycleState } from '@fleetwatch/contracts';
import { applyLifecycle, type CheckLifecycle } from './check-lifecycle';
import { expireDeadlines } from './expiry';
import { foldObservations, type FoldItem } from './fold';
import {
  applyExpiry,
  applyObservation,
  AWAITING_FIRST_RESULT,
  type Observation,
  type TargetSnapshot,
} from './target-state';
import { checkResult, lifecycleOf } from './status.spec-helpers';

const policy = { downQuorumPct: 100 };
const ID = 'check:0191d7a2-0000-7000-8000-000000000001';
const lc = lifecycleOf(ID);
const result = (location: string, ok: boolean, at: number): Observation => ({
  ...checkResult(ID, location, ok, at),
  latencyMs: ok ? 10 : null,
  deadline: { at: at + 65_000, expireTo: S.Stale, reason: 'no result within 2 × 30s' },
});

/** Applies observations and lifecycle messages in order (what the fold does for one target). */
function run(steps: Array<Observation | CheckLifecycle>, start?: TargetSnapshot) {
  let target = start;
  const events = [];
  for (const step of steps) {
    const r = 'state' in step ? applyLifecycle(target, step, policy) : applyObservation(target, step, policy);
    target = r.target;
    events.push(...r.events);
  }
  return { target: target as TargetSnapshot, events };
}

const upUp = () => run([result('eu', true, 1000), result('us', true, 1000)]).target;
const statuses = (t: TargetSnapshot) =>
  Object.entries(t.locations)
    .map(([l, x]) => `${l}=${x.status}`)
    .join(' ');

describe('applyLifecycle: pause', () => {
  it.each<[string, () => TargetSnapshot]>([
    ['UP from two locations', upUp],
    ['PARTIAL', () => run([result('eu', true, 1000), result('us', false, 1000)]).target],
    ['STALE after a deadline', () => applyExpiry(upUp(), 'eu', 70_000, policy).target],
  ])('%s → every location PAUSED, deadlines cleared, consensus PAUSED, events in order', (_name, start) => {
    const before = start();
    const { target, events } = run([lc('paused', 3, 5000)], before);
    expect(statuses(target)).toBe('eu=PAUSED us=PAUSED');
    expect(target).toMatchObject({ status: S.Paused, paused: true, configVersion: 3, since: 5000 });
    expect(Object.values(target.locations).every((l) => l.deadline === null && l.run === null)).toBe(true);
    const expected = [
      ...['eu', 'us']
        .filter((l) => before.locations[l].status !== S.Paused)
        .map((l) => [l, before.locations[l].status, S.Paused]),
      [null, before.status, S.Paused],
    ];
    expect(events.map((e) => [e.location, e.from, e.to])).toEqual(expected);
    expect(events.map((e) => e.sequence)).toEqual(expected.map((_, i) => before.seq + i + 1));
    expect(events.every((e) => e.reason === 'check paused (config version 3)' && e.at === 5000)).toBe(true);
    expect(target.seq).toBe(before.seq + expected.length);
  });

  it('a check paused before its first result is a PAUSED target with no location, named as configured', () => {
    const { target, events } = run([lc('paused', 2, 5000, { name: 'api', checkType: 'tcp', tags: ['e2e'] })]);
    expect(target).toMatchObject({
      kind: TargetKind.Check,
      name: 'api',
      labels: { type: 'tcp' },
      tags: ['e2e'],
      status: S.Paused,
      locations: {},
    });
    expect(events.map((e) => [e.location, e.from, e.to])).toEqual([[null, S.Unknown, S.Paused]]);
  });

  it.each([
    ['started before the pause (in flight)', 4000],
    ['started after the pause (a collector without the bus running its last assignment)', 9000],
  ])('a result %s is kept out of the status: only lastSeen moves', (_name, startedAt) => {
    const paused = run([lc('paused', 3, 5000)], upUp()).target;
    const r = applyObservation(paused, result('us', false, startedAt), policy);
    expect(r.applied).toBe(false);
    expect(r.events).toEqual([]);
    expect(statuses(r.target)).toBe('eu=PAUSED us=PAUSED');
    expect(r.target.status).toBe(S.Paused);
    expect(r.target.locations.us.deadline).toBeNull();
    expect(r.target.lastSeen).toBe(Math.max(1000, startedAt));
    // A location first heard while paused is not added.
    expect(Object.keys(applyObservation(paused, result('ap', true, 9000), policy).target.locations)).toEqual([
      'eu',
      'us',
    ]);
  });

  it('pausing a paused check again (a later version) changes nothing but the version', () => {
    const paused = run([lc('paused', 3, 5000)], upUp()).target;
    const r = applyLifecycle(paused, lc('paused', 4, 6000, { name: 'renamed' }), policy);
    expect(r).toMatchObject({ applied: true, events: [] });
    expect(r.target).toMatchObject({ status: S.Paused, configVersion: 4, name: 'renamed', seq: paused.seq });
  });

  it('no deadline expires while paused', () => {
    const paused = run([lc('paused', 3, 5000)], upUp()).target;
    const withDeadline = {
      ...paused,
      locations: {
        ...paused.locations,
        eu: { ...paused.locations.eu, deadline: { at: 1, expireTo: S.Stale, reason: 'x' } },
      },
    };
    expect(applyExpiry(withDeadline, 'eu', 10_000, policy).applied).toBe(false);
    expect(
      expireDeadlines(new Map([[ID, withDeadline]]), [{ targetId: ID, location: 'eu' }], 10_000, policy).changed,
    ).toEqual([]);
  });
});

describe('applyLifecycle: resume', () => {
  const deadline = { at: 5000 + 65_000, expireTo: S.Stale, reason: 'no result within 2 × 30s after the resume' };
  const resumed = () => run([lc('paused', 3, 5000), lc('active', 4, 8000, { resumeDeadline: deadline })], upUp());

  it('every location UNKNOWN until its first result, with a deadline; consensus UNKNOWN', () => {
    const { target, events } = resumed();
    expect(statuses(target)).toBe('eu=UNKNOWN us=UNKNOWN');
    expect(target).toMatchObject({ status: S.Unknown, paused: false, configVersion: 4, since: 8000 });
    // Awaited (its first result): marked on the deadline it is stored with.
    expect(target.locations.eu).toMatchObject({
      observedAt: 8000,
      deadline: { ...deadline, reason: `${deadline.reason}${AWAITING_FIRST_RESULT}` },
    });
    expect(events.slice(3).map((e) => [e.location, e.from, e.to, e.reason])).toEqual([
      ['eu', S.Paused, S.Unknown, 'check resumed (config version 4): waiting for its first result'],
      ['us', S.Paused, S.Unknown, 'check resumed (config version 4): waiting for its first result'],
      [null, S.Paused, S.Unknown, 'check resumed (config version 4): waiting for its first result'],
    ]);
  });

  it('a result started before the resume (spooled while paused) does not count; one started after does', () => {
    const { target } = resumed();
    const late = applyObservation(target, result('eu', false, 7000), policy);
    expect(late.applied).toBe(false);
    expect(late.target.status).toBe(S.Unknown);
    const fresh = run([result('eu', true, 9000), result('us', true, 9100)], late.target);
    expect(fresh.target.status).toBe(S.Up);
    expect(fresh.events.filter((e) => e.location === null).map((e) => [e.from, e.to])).toEqual([[S.Unknown, S.Up]]);
  });

  it('nothing heard within the deadline → STALE', () => {
    const { target } = resumed();
    const r = expireDeadlines(
      new Map([[ID, target]]),
      [
        { targetId: ID, location: 'eu' },
        { targetId: ID, location: 'us' },
      ],
      deadline.at,
      policy,
    );
    expect(r.changed[0].status).toBe(S.Stale);
  });

  it('active on a check that was not paused (created, edited) changes no status', () => {
    const before = upUp();
    const r = applyLifecycle(before, lc('active', 2, 5000, { name: 'renamed', tags: ['a'] }), policy);
    expect(r).toMatchObject({ applied: true, events: [] });
    expect(r.target).toMatchObject({ status: S.Up, name: 'renamed', tags: ['a'], seq: before.seq, configVersion: 2 });
  });

  it('a created check is listed UNKNOWN with no location before its first result', () => {
    const r = applyLifecycle(undefined, lc('active', 1, 5000, { name: 'api' }), policy);
    expect(r.target).toMatchObject({ status: S.Unknown, locations: {}, name: 'api', since: 5000, configVersion: 1 });
    expect(r.events).toEqual([]);
  });
});

describe('applyLifecycle: delete', () => {
  it('leaves a tombstone: no location, never folded into again', () => {
    const { target, events } = run([lc('deleted', 5, 9000)], upUp());
    // Every location and the consensus to UNKNOWN, in events (the alert evaluator follows them): a check deleted
    // while DOWN no longer goes on to fire, and one firing resolves.
    expect(events.map((e) => [e.location, e.from, e.to, e.reason])).toEqual([
      ['eu', S.Up, S.Unknown, 'check deleted (config version 5)'],
      ['us', S.Up, S.Unknown, 'check deleted (config version 5)'],
      [null, S.Up, S.Unknown, 'check deleted (config version 5)'],
    ]);
    expect(events.map((e) => e.sequence)).toEqual([4, 5, 6]);
    expect(target).toMatchObject({ deletedAt: 9000, locations: {}, configVersion: 5, status: S.Unknown, seq: 6 });
    for (const late of [result('eu', true, 8000), result('eu', false, 20_000)]) {
      const r = applyObservation(target, late, policy);
      expect(r).toMatchObject({ applied: false, events: [] });
      expect(r.target).toBe(target);
    }
    expect(applyLifecycle(target, lc('active', 6, 10_000), policy)).toMatchObject({ applied: false, target });
  });

  it('a check DOWN at one location: that location and the consensus to UNKNOWN; one UNKNOWN already has none', () => {
    const before = run([result('eu', false, 1000), lc('active', 2, 1500, { name: 'api' })]).target;
    expect(before.status).toBe(S.Down);
    const { events } = run([lc('deleted', 3, 9000)], before);
    expect(events.map((e) => `${e.location ?? 'target'}:${e.from}>${e.to}`)).toEqual([
      'eu:DOWN>UNKNOWN',
      'target:DOWN>UNKNOWN',
    ]);
    const created = applyLifecycle(undefined, lc('active', 1, 1000, { name: 'api' }), policy).target;
    expect(applyLifecycle(created, lc('deleted', 2, 9000), policy).events).toEqual([]);
  });

  it('dated no earlier than what the target holds (a result stamped after the delete by a collector ahead)', () => {
    const down = run([result('eu', false, 50_000), lc('active', 2, 1000, { name: 'api' })]).target;
    const { target, events } = run([lc('deleted', 3, 45_000)], down);
    expect(events.map((e) => e.at)).toEqual([50_000, 50_000]);
    expect(target).toMatchObject({ since: 50_000, deletedAt: 50_000 });
  });

  it('of a check never heard of: a tombstone all the same (a late result must not create it)', () => {
    const tomb = applyLifecycle(undefined, lc('deleted', 2, 9000), policy).target;
    expect(tomb.deletedAt).toBe(9000);
    const fold = foldObservations(
      new Map([[ID, tomb]]),
      [{ type: 'observation', id: 'r1', observation: result('eu', true, 9500) }],
      new Set(['r1']),
      policy,
    );
    expect(fold.changed.size).toBe(0);
    expect(fold.targets.get(ID)).toBe(tomb);
  });
});

describe('applyLifecycle: versions', () => {
  it.each<[string, CheckLifecycle[], { paused: boolean; deleted: boolean; version: number }]>([
    ['in order', [lc('paused', 2, 1), lc('active', 3, 2)], { paused: false, deleted: false, version: 3 }],
    ['older after newer', [lc('active', 3, 2), lc('paused', 2, 1)], { paused: false, deleted: false, version: 3 }],
    ['redelivered', [lc('paused', 2, 1), lc('paused', 2, 1)], { paused: true, deleted: false, version: 2 }],
    [
      'resume older than the delete',
      [lc('deleted', 4, 3), lc('active', 3, 2)],
      { paused: false, deleted: true, version: 4 },
    ],
  ])('%s', (_name, messages, expected) => {
    const { target } = run(messages, upUp());
    expect({ paused: !!target.paused, deleted: target.deletedAt != null, version: target.configVersion }).toEqual(
      expected,
    );
  });

  it('property: any delivery order, with redeliveries, ends as the newest version says', () => {
    const states = fc.array(fc.constantFrom<CheckLifecycleState>('active', 'paused'), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(states, fc.boolean(), fc.array(fc.nat(), { maxLength: 24 }), (sequence, deleted, picks) => {
        // What the owner published, versions increasing; a delete only ever comes last.
        const published = sequence.map((s, i) => lc(s, i + 1, 1000 * (i + 1)));
        if (deleted) published.push(lc('deleted', published.length + 1, 1000 * (published.length + 1)));
        // Delivered in any order, some twice, each at least once.
        const delivered = [...picks.map((p) => published[p % published.length]), ...published.slice().reverse()];
        const { target } = run(delivered, upUp());
        const newest = published[published.length - 1];
        expect(target.configVersion).toBe(newest.version);
        expect(target.deletedAt != null).toBe(newest.state === 'deleted');
        if (newest.state !== 'deleted') {
          expect(!!target.paused).toBe(newest.state === 'paused');
          expect(target.status === S.Paused).toBe(newest.state === 'paused');
        }
      }),
    );
  });
});

describe('foldObservations with lifecycle items', () => {
  it('a redelivered lifecycle message is a duplicate whose target is re-projected', () => {
    const items: FoldItem[] = [
      { type: 'lifecycle', id: 'l1', lifecycle: lc('paused', 2, 5000) },
      { type: 'lifecycle', id: 'l1', lifecycle: lc('paused', 2, 5000) },
    ];
    const r = foldObservations(new Map([[ID, upUp()]]), items, new Set(), policy);
    expect(r.targets.get(ID)?.status).toBe(S.Paused);
    expect([...r.applied]).toEqual(['l1']);
    expect(r.duplicates).toBe(1);
    expect(r.resync.has(ID)).toBe(true);
    expect(r.events.at(-1)).toMatchObject({ location: null, to: S.Paused });
  });
});

describe("a heartbeat monitor's period + grace changed (pingWindowMs)", () => {
  /** A ping item; its schedule 3600 s + 60 s, max runtime 600 s unless said. */
  const hb = (
    signal: 'success' | 'start' | 'fail',
    at: number,
    schedule: { periodSeconds?: number; maxRuntimeSeconds?: number | null; configVersion?: number } = {},
  ): FoldItem => ({
    type: 'ping',
    id: `${signal}-${at}`,
    targetId: ID,
    location: 'push',
    name: 'job',
    monitorId: null,
    ping: { signal, at, runId: null, periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: 600, ...schedule },
  });
  const folded = (items: FoldItem[]) =>
    foldObservations(new Map(), items, new Set(items.map((i) => i.id)), policy).targets.get(ID) as TargetSnapshot;
  const changed = (t: TargetSnapshot, windowMs: number) =>
    applyLifecycle(t, lc('active', 2, 50_000, { checkType: 'push', pingWindowMs: windowMs }), policy).target.locations
      .push;

  it('waiting for its next ping: due at the last ping + the new window, shorter or longer', () => {
    const up = folded([hb('success', 1000)]);
    expect(up.locations.push.deadline?.at).toBe(1000 + 3_660_000);
    expect(changed(up, 70_000)?.deadline).toEqual({
      at: 71_000,
      expireTo: S.Down,
      reason: 'no ping within period + grace (70s)',
    });
    expect(changed(up, 7_200_000)?.deadline?.at).toBe(7_201_000);
  });

  it('a ping heard later than stamped (a replica behind): an edit keeps counting from when it was heard', () => {
    const success = hb('success', 0);
    if (success.type !== 'ping') throw new Error('not a ping');
    const late: FoldItem = { ...success, ping: { ...success.ping, heardAt: 7_200_000 } };
    const up = folded([late]);
    expect(up.locations.push.deadline?.at).toBe(7_200_000 + 3_660_000);
    // A rename (same window): the deadline stays, not pulled back to the stamp + window (past: DOWN at once).
    expect(changed(up, 3_660_000)).toEqual(up.locations.push);
    // Window cut by an hour: an hour earlier than it was.
    expect(changed(up, 60_000)?.deadline?.at).toBe(7_200_000 + 60_000);
  });

  it('a ping folded after the change but carrying the old schedule (an ingest replica not yet told) counts with the new window', () => {
    // The ping carries the monitor's schedule as the receiving replica cached it (3600 s + 60 s); the change reached the
    // aggregator first. Counted with the old window, a job moved from hourly to daily went DOWN an hour later (for a
    // day), and one moved from weekly to hourly that then stopped went DOWN only after the old, longer window.
    const up = folded([hb('success', 1000)]);
    const stale = (t: TargetSnapshot, windowMs: number, at: number) => {
      const moved = applyLifecycle(
        t,
        lc('active', 2, 50_000, { checkType: 'push', pingWindowMs: windowMs }),
        policy,
      ).target;
      return foldObservations(
        new Map([[ID, moved]]),
        [hb('success', at)],
        new Set([`success-${at}`]),
        policy,
      ).targets.get(ID) as TargetSnapshot;
    };
    const withPeriod = (item: FoldItem, periodSeconds: number): FoldItem =>
      item.type === 'ping' ? { ...item, ping: { ...item.ping, periodSeconds } } : item;
    const longer = stale(up, 86_400_000, 60_000);
    expect(longer.locations.push.deadline).toEqual({
      at: 60_000 + 86_400_000,
      expireTo: S.Down,
      reason: 'no ping within period + grace (86400s)',
    });
    expect(
      expireDeadlines(new Map([[ID, longer]]), [{ targetId: ID, location: 'push' }], 60_000 + 3_660_000, policy)
        .changed,
    ).toEqual([]);
    expect(stale(up, 70_000, 60_000).locations.push.deadline?.at).toBe(60_000 + 70_000);
    // The next ping with the new schedule sets its own deadline as ever.
    const next = foldObservations(
      new Map([[ID, longer]]),
      [withPeriod(hb('success', 120_000), 86_340)],
      new Set(['success-120000']),
      policy,
    ).targets.get(ID) as TargetSnapshot;
    expect(next.locations.push.deadline).toEqual({
      at: 120_000 + 86_400_000,
      expireTo: S.Down,
      reason: 'no ping within period 86340s + grace 60s',
    });
  });

  it('a run open (its max runtime) or DOWN after a fail ping: left as it is', () => {
    const running = folded([hb('success', 1000), hb('start', 2000)]);
    expect(changed(running, 70_000)).toEqual(running.locations.push);
    const failed = folded([hb('fail', 1000)]);
    expect(changed(failed, 70_000)).toEqual(failed.locations.push);
  });

  // Review of 7239ac8b (changedWindowOf): the new window wins only over the first plain success ping after the change.
  describe('pings still carrying the old schedule after the change (hourly → daily)', () => {
    const DAY = 86_400_000;
    const after = (t: TargetSnapshot, items: FoldItem[]) =>
      foldObservations(new Map([[ID, t]]), items, new Set(items.map((i) => i.id)), policy).targets.get(
        ID,
      ) as TargetSnapshot;
    const withPeriod = (item: FoldItem, periodSeconds: number): FoldItem =>
      item.type === 'ping' ? { ...item, ping: { ...item.ping, periodSeconds } } : item;
    const daily = (t: TargetSnapshot) =>
      applyLifecycle(t, lc('active', 2, 50_000, { checkType: 'push', pingWindowMs: DAY }), policy).target;
    const downAfterAnHour = (t: TargetSnapshot, lastPingAt: number) =>
      expireDeadlines(new Map([[ID, t]]), [{ targetId: ID, location: 'push' }], lastPingAt + 3_660_000, policy).changed;

    it('a job that pings /start then success (both through the replica not yet told) counts with the new window', () => {
      const t = after(daily(folded([hb('success', 1000)])), [hb('start', 60_000), hb('success', 120_000)]);
      expect(t.locations.push.deadline?.at).toBe(120_000 + DAY);
      expect(downAfterAnHour(t, 120_000)).toEqual([]);
    });

    it('a change that lands while a run is open: its success through the replica not yet told counts with the new window', () => {
      const t = after(daily(folded([hb('success', 1000), hb('start', 2000)])), [hb('success', 120_000)]);
      expect(t.locations.push.deadline?.at).toBe(120_000 + DAY);
      expect(downAfterAnHour(t, 120_000)).toEqual([]);
    });

    it('a ping through a told replica, then one through a replica not yet told: still the new window', () => {
      const t = after(daily(folded([hb('success', 1000)])), [
        withPeriod(hb('success', 60_000), 86_340),
        hb('success', 120_000),
      ]);
      expect(t.locations.push.deadline?.at).toBe(120_000 + DAY);
      expect(downAfterAnHour(t, 120_000)).toEqual([]);
    });

    it('a run with no max runtime started through the replica not yet told is due within the new window', () => {
      const start = hb('start', 60_000);
      if (start.type !== 'ping') throw new Error('not a ping');
      const noLimit: FoldItem = { ...start, ping: { ...start.ping, maxRuntimeSeconds: null } };
      const t = after(daily(folded([hb('success', 1000)])), [noLimit]);
      expect(t.locations.push.deadline).toEqual({
        at: 60_000 + DAY,
        expireTo: S.Down,
        reason: 'no ping within period + grace (86400s)',
      });
    });

    it('the target keeps the window with the version that said it; a later lifecycle that does not say one drops it', () => {
      const t = daily(folded([hb('success', 1000)]));
      expect(t).toMatchObject({ configVersion: 2, pingWindowMs: DAY, pingWindowVersion: 2 });
      const untold = applyLifecycle(t, lc('active', 3, 60_000, { checkType: 'push' }), policy).target;
      expect(untold).toMatchObject({ configVersion: 3, pingWindowMs: null, pingWindowVersion: null });
      expect(after(untold, [hb('success', 120_000)]).locations.push.deadline?.at).toBe(120_000 + 3_660_000);
    });

    it("a window said by an older version than the target's (a replica of the version before applied the newer one): the ping's own", () => {
      // What such a replica leaves: configVersion moved on, the window (not a column it knows) as it was.
      const t = { ...daily(folded([hb('success', 1000)])), configVersion: 3 };
      expect(after(t, [hb('success', 120_000)]).locations.push.deadline).toEqual({
        at: 120_000 + 3_660_000,
        expireTo: S.Down,
        reason: 'no ping within period 3600s + grace 60s',
      });
    });
  });

  // Review of 6cffe900 (the target's window wins over the ping's): the other order. status-ingest reads a monitor from
  // Postgres (cached INGEST_PING_CACHE_MS, 5 s), while check.lifecycle reaches the aggregator through the outbox relay
  // and the bus: pings can carry the NEW schedule while the target still holds the old window. A ping that says the
  // config version it was read at counts with its own schedule when that version is newer than the window held (and
  // the target holds it from then on); one that does not say (a status-ingest of before) with the old window until
  // the lifecycle arrives — which must then put every deadline the old window set right.
  describe('pings carrying a newer schedule than the target holds (the lifecycle not folded yet)', () => {
    const HOUR = 3_660_000;
    const DAY = 86_400_000;
    const fold = (t: TargetSnapshot | undefined, items: FoldItem[]) =>
      foldObservations(t ? new Map([[ID, t]]) : new Map(), items, new Set(items.map((i) => i.id)), policy).targets.get(
        ID,
      ) as TargetSnapshot;
    const ping = (signal: 'success' | 'start', at: number, periodSeconds: number): FoldItem =>
      hb(signal, at, { periodSeconds, maxRuntimeSeconds: null });
    /** A ping as a status-ingest that sends it says it: with the config version its schedule was read at. */
    const versioned = (signal: 'success' | 'start', at: number, periodSeconds: number, configVersion: number) =>
      hb(signal, at, { periodSeconds, maxRuntimeSeconds: null, configVersion });
    const configured = (version: number, at: number, windowMs: number, t?: TargetSnapshot) =>
      applyLifecycle(t, lc('active', version, at, { checkType: 'push', pingWindowMs: windowMs }), policy).target;
    const expired = (t: TargetSnapshot, now: number) =>
      expireDeadlines(new Map([[ID, t]]), [{ targetId: ID, location: 'push' }], now, policy).changed;

    it('waiting for its next ping (hourly → daily): the lifecycle moves the deadline to the last ping + a day', () => {
      const hourly = fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]);
      const early = fold(hourly, [ping('success', 60_000, 86_340)]);
      expect(early.locations.push.deadline?.at).toBe(60_000 + HOUR);
      const t = configured(2, 70_000, DAY, early);
      expect(t.locations.push.deadline).toEqual({
        at: 60_000 + DAY,
        expireTo: S.Down,
        reason: 'no ping within period + grace (86400s)',
      });
      expect(expired(t, 60_000 + HOUR + 1)).toEqual([]);
    });

    it('a run with no max runtime started with the new daily schedule: not DOWN an hour after its start once the lifecycle is in', () => {
      const hourly = fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]);
      const running = fold(hourly, [ping('start', 60_000, 86_340)]);
      const t = configured(2, 70_000, DAY, running);
      expect(t.locations.push.run).toEqual({ startedAt: 60_000, runId: null });
      // Folded with the hourly window held then (not the start's own daily schedule): left there by the lifecycle, the
      // daily job that ran longer than an hour was DOWN.
      expect(t.locations.push.deadline?.at).toBe(60_000 + DAY);
      expect(expired(t, 60_000 + HOUR + 1)).toEqual([]);
    });

    it('a run with no max runtime started with the new hourly schedule (daily → hourly): a hung run is DOWN an hour on, not a day', () => {
      const daily = fold(configured(1, 0, DAY), [ping('success', 1000, 86_340)]);
      const running = fold(daily, [ping('start', 60_000, 3600)]);
      const t = configured(2, 70_000, HOUR, running);
      expect(t.locations.push.deadline?.at).toBe(60_000 + HOUR);
      expect(expired(t, 60_000 + HOUR + 1).map((x) => x.status)).toEqual([S.Down]);
    });

    it('a lifecycle later than the old window (relay or aggregator behind): the last ping, read at the new version, is never DOWN', () => {
      // The ping said daily, read at version 2; the target holds the hourly window of version 1. Counted hourly it was
      // DOWN an hour on, and the lifecycle, landing after that, left it DOWN until the next daily ping.
      const hourly = fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]);
      const early = fold(hourly, [versioned('success', 60_000, 86_340, 2)]);
      expect(early.locations.push.deadline).toEqual({
        at: 60_000 + DAY,
        expireTo: S.Down,
        reason: 'no ping within period 86340s + grace 60s',
      });
      expect(early).toMatchObject({ configVersion: 1, pingWindowMs: DAY, pingWindowVersion: 2 });
      expect(expired(early, 60_000 + HOUR + 1)).toEqual([]);
      const t = configured(2, 60_000 + HOUR + 5000, DAY, early);
      expect(t.locations.push).toMatchObject({ status: S.Up, deadline: { at: 60_000 + DAY } });
      expect(t).toMatchObject({ configVersion: 2, pingWindowMs: DAY, pingWindowVersion: 2 });
      expect(expired(t, 60_000 + DAY - 1)).toEqual([]);
      expect(expired(t, 60_000 + DAY).map((x) => x.locations.push.status)).toEqual([S.Down]);
    });

    it('a ping with no version (a status-ingest of before): counted with the window held, as before', () => {
      const hourly = fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]);
      const early = fold(hourly, [ping('success', 60_000, 86_340)]);
      expect(early.locations.push.deadline?.at).toBe(60_000 + HOUR);
      expect(early).toMatchObject({ pingWindowMs: HOUR, pingWindowVersion: 1 });
    });

    it("a ping read at the window's own version or an older one counts with the window held, whatever it carries", () => {
      const hourly = configured(1, 0, HOUR);
      expect(fold(hourly, [versioned('success', 60_000, 86_340, 1)]).locations.push.deadline?.at).toBe(60_000 + HOUR);
      const daily = configured(3, 0, DAY);
      const untold = fold(daily, [versioned('success', 60_000, 3600, 2)]);
      expect(untold.locations.push.deadline?.at).toBe(60_000 + DAY);
      expect(untold).toMatchObject({ configVersion: 3, pingWindowMs: DAY, pingWindowVersion: 3 });
    });

    it('start through a replica told (read at the new version), success through one not told (the old schedule): the new window, lifecycle or not', () => {
      const hourly = fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]);
      const t = fold(hourly, [versioned('start', 60_000, 86_340, 2), versioned('success', 61_000, 3600, 1)]);
      expect(t.locations.push).toMatchObject({ status: S.Up, run: null, deadline: { at: 61_000 + DAY } });
      expect(expired(t, 61_000 + HOUR + 1)).toEqual([]);
      // The same with the second ping from a status-ingest of before (no version).
      const bare = fold(hourly, [versioned('start', 60_000, 86_340, 2), ping('success', 61_000, 3600)]);
      expect(bare.locations.push.deadline?.at).toBe(61_000 + DAY);
      // The lifecycle, when it lands, moves nothing.
      expect(configured(2, 70_000, DAY, t).locations.push.deadline).toEqual(t.locations.push.deadline);
    });

    it('a run with no max runtime started at the new version (daily): due a day on, not an hour', () => {
      const hourly = fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]);
      const running = fold(hourly, [versioned('start', 60_000, 86_340, 2)]);
      expect(running.locations.push).toMatchObject({ run: { startedAt: 60_000 }, deadline: { at: 60_000 + DAY } });
      expect(expired(running, 60_000 + HOUR + 1)).toEqual([]);
    });

    it('shortened (daily → hourly): a ping of the new version is due an hour on, and so is a later one not told', () => {
      const daily = fold(configured(1, 0, DAY), [ping('success', 1000, 86_340)]);
      const t = fold(daily, [versioned('success', 60_000, 3600, 2), versioned('success', 120_000, 86_340, 1)]);
      expect(t.locations.push.deadline?.at).toBe(120_000 + HOUR);
      expect(expired(t, 120_000 + HOUR).map((x) => x.locations.push.status)).toEqual([S.Down]);
    });

    it("an older version's lifecycle landing after a newer version's ping: the newer window and its deadline stay", () => {
      // v2 made it every 10 minutes, v3 daily; the ping read at v3 comes before either lifecycle.
      const TEN = 660_000;
      const hourly = fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]);
      const early = fold(hourly, [versioned('success', 60_000, 86_340, 3)]);
      const v2 = configured(2, 61_000, TEN, early);
      expect(v2).toMatchObject({ configVersion: 2, pingWindowMs: DAY, pingWindowVersion: 3 });
      expect(v2.locations.push.deadline?.at).toBe(60_000 + DAY);
      // A replica told of v2 only: counted with v3's window.
      const untold = fold(v2, [versioned('success', 120_000, 600, 2)]);
      expect(untold.locations.push.deadline?.at).toBe(120_000 + DAY);
      const v3 = configured(3, 130_000, DAY, untold);
      expect(v3).toMatchObject({ configVersion: 3, pingWindowMs: DAY, pingWindowVersion: 3 });
      expect(v3.locations.push.deadline?.at).toBe(120_000 + DAY);
      // A later change moves it as any change does.
      expect(configured(4, 140_000, HOUR, v3).locations.push.deadline?.at).toBe(120_000 + HOUR);
    });

    it('a version that changed something else (a rename): its pings and its lifecycle leave the deadline as it was', () => {
      const daily = fold(configured(2, 0, DAY), [ping('success', 1000, 86_340)]);
      const t = fold(daily, [versioned('success', 60_000, 86_340, 3), versioned('success', 61_000, 3600, 1)]);
      expect(t.locations.push.deadline?.at).toBe(61_000 + DAY);
      const renamed = applyLifecycle(
        t,
        lc('active', 3, 62_000, { checkType: 'push', name: 'renamed', pingWindowMs: DAY }),
        policy,
      ).target;
      expect(renamed).toMatchObject({ name: 'renamed', configVersion: 3, pingWindowMs: DAY, pingWindowVersion: 3 });
      expect(renamed.locations.push).toEqual(t.locations.push);
    });

    it('a window left behind by an aggregator of before (older than the last lifecycle): pings count with their own', () => {
      const t = { ...fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]), configVersion: 3 };
      expect(fold(t, [versioned('success', 60_000, 86_340, 2)]).locations.push.deadline?.at).toBe(60_000 + DAY);
      expect(fold(t, [versioned('success', 60_000, 600, 3)]).locations.push.deadline?.at).toBe(60_000 + 660_000);
      // Read at a version after it: held from then on.
      const held = fold(t, [versioned('success', 60_000, 86_340, 4), versioned('success', 61_000, 3600, 3)]);
      expect(held).toMatchObject({ pingWindowMs: DAY, pingWindowVersion: 4 });
      expect(held.locations.push.deadline?.at).toBe(61_000 + DAY);
    });

    // Review of cce6df45: a ping read at a newer version than the one that set the location's deadline, but stamped
    // before that one (two replicas, their clocks or confirms apart): not counted, yet its window is held. The deadline
    // stayed the older window's — v2's daily — while the target held v3's hourly: a job that stopped was DOWN a day on,
    // not an hour, until v3's lifecycle landed (which moves it, as a change of window does).
    it('a ping of a newer version folded too late to count: the deadline an older window set moves to the one it holds', () => {
      const hourly = fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]);
      const daily = fold(hourly, [versioned('success', 101_000, 86_340, 2)]);
      expect(daily.locations.push.deadline?.at).toBe(101_000 + DAY);
      const t = fold(daily, [versioned('success', 100_000, 3600, 3)]);
      expect(t).toMatchObject({ configVersion: 1, pingWindowMs: HOUR, pingWindowVersion: 3 });
      expect(t.locations.push.observedAt).toBe(101_000);
      expect(t.locations.push.deadline).toEqual({
        at: 101_000 + HOUR,
        expireTo: S.Down,
        reason: 'no ping within period + grace (3660s)',
      });
      expect(expired(t, 101_000 + HOUR).map((x) => x.locations.push.status)).toEqual([S.Down]);
      // v3's lifecycle, when it lands, says the same window and moves nothing.
      expect(configured(3, 110_000, HOUR, t).locations.push.deadline).toEqual(t.locations.push.deadline);
    });

    // Review of cce6df45: a resume of an older version than the window held. v2 paused the hourly job, v3 resumed it,
    // v4 made it daily; a ping read at v4 came while the target was still paused (v3 and v4 late): not counted, but
    // its window held. v3's resume gave every location v3's own window from the resume (an hour) — DOWN an hour on,
    // though the target held v4's daily window, which a later version's ping set and no older lifecycle moves.
    it("a resume of an older version than the window held: due the held window after the resume, not the resume's own", () => {
      const paused = applyLifecycle(
        fold(configured(1, 0, HOUR), [ping('success', 1000, 3600)]),
        lc('paused', 2, 2000, { checkType: 'push', pingWindowMs: HOUR }),
        policy,
      ).target;
      const held = fold(paused, [versioned('success', 10_000, 86_340, 4)]);
      expect(held).toMatchObject({ status: S.Paused, configVersion: 2, pingWindowMs: DAY, pingWindowVersion: 4 });
      const resumed = applyLifecycle(
        held,
        lc('active', 3, 20_000, {
          checkType: 'push',
          pingWindowMs: HOUR,
          resumeDeadline: {
            at: 20_000 + HOUR,
            expireTo: S.Down,
            reason: 'no ping within period + grace (3660s) of the resume',
          },
        }),
        policy,
      ).target;
      expect(resumed).toMatchObject({ status: S.Unknown, configVersion: 3, pingWindowMs: DAY, pingWindowVersion: 4 });
      expect(resumed.locations.push.deadline).toEqual({
        at: 20_000 + DAY,
        expireTo: S.Down,
        reason: 'no ping within period + grace (86400s) of the resume',
      });
      expect(expired(resumed, 20_000 + HOUR + 1)).toEqual([]);
      // v4's lifecycle, when it lands, says the same window and moves nothing.
      expect(configured(4, 30_000, DAY, resumed).locations.push.deadline).toEqual(resumed.locations.push.deadline);
      expect(expired(resumed, 20_000 + DAY).map((x) => x.locations.push.status)).toEqual([S.Down]);
    });
  });

  it('a check that is not a heartbeat monitor (no pingWindowMs): its STALE deadlines are left as they are', () => {
    const t = upUp();
    expect(applyLifecycle(t, lc('active', 2, 50_000, { name: 'renamed' }), policy).target.locations).toEqual(
      t.locations,
    );
  });
});

describe('a heartbeat monitor never pinged', () => {
  // As the aggregator's mapper makes them (resumeDeadline: what a resume gives each location held).
  const push = (state: CheckLifecycleState, version: number, at: number) =>
    lc(state, version, at, {
      checkType: 'push',
      name: 'nightly',
      pingWindowMs: 70_000,
      resumeDeadline: {
        at: at + 70_000,
        expireTo: S.Down,
        reason: 'no ping within period + grace (70s) of the resume',
      },
    });

  it('created: its location waits UNKNOWN for the first ping, and is DOWN once period + grace pass without one', () => {
    const created = run([push('active', 1, 1000)]).target;
    expect(created.status).toBe(S.Unknown);
    expect(created.locations.push).toMatchObject({
      status: S.Unknown,
      lastSeen: 0,
      deadline: { at: 71_000, expireTo: S.Down, reason: 'no ping within period + grace (70s) of its creation' },
    });
    expect(applyExpiry(created, 'push', 70_999, policy).target.status).toBe(S.Unknown);
    expect(applyExpiry(created, 'push', 71_000, policy).target.status).toBe(S.Down);
    // A change of schedule moves the wait like any other (from the creation).
    const longer = applyLifecycle(
      created,
      lc('active', 2, 5000, { checkType: 'push', pingWindowMs: 700_000 }),
      policy,
    ).target;
    expect(longer.locations.push.deadline?.at).toBe(701_000);
  });

  it('paused, then resumed: waits for its first ping from the resume (it stayed UNKNOWN for ever)', () => {
    const paused = run([push('active', 1, 1000), push('paused', 2, 2000)]).target;
    expect(paused.locations.push).toMatchObject({ status: S.Paused, deadline: null });
    const resumed = run([push('active', 3, 10_000)], paused).target;
    expect(resumed.locations.push.deadline).toMatchObject({ at: 80_000, expireTo: S.Down });
    // One created paused-then-resumed by an older version (no location held): given one at the resume.
    const bare = { ...paused, locations: {} };
    const r = applyLifecycle(bare, push('active', 3, 10_000), policy).target;
    expect(r.locations.push.deadline).toEqual({
      at: 80_000,
      expireTo: S.Down,
      reason: 'no ping within period + grace (70s) of the resume',
    });
  });

  it('a probed check gets no location before its first result', () => {
    expect(run([lc('active', 1, 1000, { checkType: 'http', checkIntervalSeconds: 30 })]).target.locations).toEqual({});
  });

  it("its first ping ends the wait, also one stamped before the creation by a clock behind the owner's", () => {
    const created = run([push('active', 1, 10_000)]).target;
    const pinged = applyObservation(
      created,
      {
        targetId: ID,
        kind: TargetKind.Check,
        name: 'nightly',
        location: 'push',
        at: 9990,
        status: S.Up,
        reason: 'ping',
        deadline: { at: 9990 + 70_000, expireTo: S.Down, reason: 'no ping within period 60s + grace 10s' },
      },
      policy,
    ).target;
    expect(pinged.status).toBe(S.Up);
    expect(pinged.locations.push.deadline?.at).toBe(79_990);
  });

  it('a monitor pinged before keeps its location as it is at a change', () => {
    const created = run([push('active', 1, 1000)]).target;
    const pinged = applyObservation(
      created,
      {
        targetId: ID,
        kind: TargetKind.Check,
        name: 'nightly',
        location: 'push',
        at: 2000,
        status: S.Up,
        reason: 'ping',
        deadline: { at: 72_000, expireTo: S.Down, reason: 'no ping within period 60s + grace 10s' },
      },
      policy,
    ).target;
    const changed = applyLifecycle(pinged, push('active', 2, 3000), policy).target;
    expect(changed.locations.push).toEqual(pinged.locations.push);
  });
});

describe("a probed check's interval changed (checkIntervalSeconds)", () => {
  // result(): heard at `at`, due at + 2 × 30 s + 5 s.
  const changed = (t: TargetSnapshot, seconds: number, at = 20_000) =>
    applyLifecycle(t, lc('active', 2, at, { checkType: 'http', checkIntervalSeconds: seconds }), policy).target
      .locations;

  it('longer: two new intervals after the last result, never before two new intervals after the change', () => {
    const t = upUp(); // results at 1 s, due at 66 s
    expect(changed(t, 600).eu.deadline).toEqual({
      at: 20_000 + 1_200_000 + 5000,
      expireTo: S.Stale,
      reason: 'no result within 2 × 600s (the interval was changed)',
    });
    // A result heard after the change (it overtook the lifecycle message): from that result.
    const late = run([result('eu', true, 30_000)], t).target;
    expect(changed(late, 600).eu.deadline?.at).toBe(30_000 + 1_200_000 + 5000);
  });

  it('shorter: the deadline its last result set stays (a collector that missed the change runs on the old schedule)', () => {
    const t = upUp();
    expect(changed(t, 10)).toEqual(t.locations);
  });

  it('shortened: the results on the new schedule set their own deadlines (a collector gone after it reads STALE)', () => {
    // A day's interval, a result at 1 s (due two days on), then 30 s.
    const daily = run([
      {
        ...result('eu', true, 1000),
        deadline: { at: 1000 + 172_805_000, expireTo: S.Stale, reason: 'no result within 2 × 86400s' },
      },
    ]).target;
    const shorter = applyLifecycle(daily, lc('active', 2, 2000, { checkIntervalSeconds: 30 }), policy).target;
    const onNew = applyObservation(shorter, result('eu', true, 30_000), policy).target;
    expect(onNew.locations.eu.deadline?.at).toBe(30_000 + 65_000);
    expect(applyExpiry(onNew, 'eu', 30_000 + 65_001, policy).target.locations.eu.status).toBe(S.Stale);
  });

  it('a result run with the old interval after the change does not pull the moved deadline back', () => {
    const longer = applyLifecycle(upUp(), lc('active', 2, 20_000, { checkIntervalSeconds: 600 }), policy).target;
    const moved = longer.locations.eu.deadline;
    // In flight when the interval changed: run at 21 s with the old 30 s (due at 86 s by itself).
    const late = applyObservation(longer, result('eu', true, 21_000), policy).target;
    expect(late.locations.eu.deadline).toEqual(moved);
    expect(applyExpiry(late, 'eu', 90_000, policy).target.locations.eu.status).toBe(S.Up);
    // The first result on the new schedule sets its own.
    const next = applyObservation(
      late,
      {
        ...result('eu', true, 600_000),
        deadline: { at: 600_000 + 1_205_000, expireTo: S.Stale, reason: 'no result within 2 × 600s' },
      },
      policy,
    ).target;
    expect(next.locations.eu.deadline?.at).toBe(1_805_000);
  });

  it('a lengthening undone (30 s → 3600 s → 30 s): the moved deadline counts the new interval again, and a location that goes quiet reads STALE', () => {
    const longer = applyLifecycle(upUp(), lc('active', 2, 20_000, { checkIntervalSeconds: 3600 }), policy).target;
    expect(longer.locations.eu.deadline?.at).toBe(20_000 + 7_200_000 + 5000);
    const back = applyLifecycle(longer, lc('active', 3, 30_000, { checkIntervalSeconds: 30 }), policy).target;
    expect(back.locations.eu.deadline).toEqual({
      at: 30_000 + 60_000 + 5000,
      expireTo: S.Stale,
      reason: 'no result within 2 × 30s (the interval was changed)',
    });
    // Results on the 30 s schedule set their own deadlines; the collector stops after the one at 150 s.
    let t = back;
    for (let at = 60_000; at <= 150_000; at += 30_000) t = applyObservation(t, result('eu', true, at), policy).target;
    expect(t.locations.eu.deadline?.at).toBe(150_000 + 65_000);
    expect(applyExpiry(t, 'eu', 150_000 + 65_001, policy).target.locations.eu.status).toBe(S.Stale);
    // Undone to an interval still longer than the first (3600 s → 600 s): never later than the moved deadline was.
    const partly = applyLifecycle(longer, lc('active', 3, 30_000, { checkIntervalSeconds: 600 }), policy).target;
    expect(partly.locations.eu.deadline?.at).toBe(30_000 + 1_200_000 + 5000);
  });

  it('the same interval (a rename), a heartbeat deadline, or a location STALE already: left as they are', () => {
    const t = upUp();
    expect(changed(t, 30)).toEqual(t.locations);
    const stale = applyExpiry(t, 'eu', 70_000, policy).target;
    expect(changed(stale, 600).eu).toEqual(stale.locations.eu);
  });

  it('keeps the mark of an older contradicting result in the reason', () => {
    const t = upUp();
    const marked = {
      ...t,
      locations: {
        ...t.locations,
        eu: { ...t.locations.eu, deadline: { at: 66_000, expireTo: S.Stale, reason: `no result within 2 × 30s (x)` } },
      },
    };
    expect(changed(marked, 60).eu.deadline?.reason).toBe('no result within 2 × 60s (x) (the interval was changed)');
  });
});

describe('a configured check is named and tagged by its configuration, not by its results', () => {
  it('a result run with the old assignment after a rename and retag leaves the new name, tags and type', () => {
    const renamed = run([
      result('eu', true, 1000),
      lc('active', 2, 2000, { name: 'api-renamed', tags: ['new'], checkType: 'http' }),
    ]).target;
    const late = applyObservation(
      renamed,
      { ...result('eu', false, 3000), name: 'api', tags: ['old'], labels: { type: 'tcp' } },
      policy,
    );
    expect(late.target).toMatchObject({ name: 'api-renamed', tags: ['new'], labels: { type: 'http' }, status: S.Down });
  });

  it('one not told of by a lifecycle message (stored before them) still takes them from its results', () => {
    const t = applyObservation(upUp(), { ...result('eu', true, 2000), name: 'other', tags: ['t'] }, policy).target;
    expect(t).toMatchObject({ name: 'other', tags: ['t'] });
  });
});

describe("a configured check's quorum is its configuration's (downQuorumPct), not its results'", () => {
  const ev = (events: Array<{ location: string | null; from: S; to: S }>) =>
    events.map((e) => `${e.location ?? 'target'}:${e.from}>${e.to}`);
  const withQuorum = (o: Observation, downQuorumPct: number | null): Observation => ({ ...o, downQuorumPct });
  // Configured (no own quorum: the site's 100 %), eu UP and us UP, as their results said.
  const configured = () =>
    run([
      lc('active', 1, 500, { locations: ['eu', 'us'], downQuorumPct: null }),
      withQuorum(result('eu', true, 1000), null),
      withQuorum(result('us', true, 1000), null),
    ]).target;

  it('edited from the site default to 50 %: results of the old and the new assignment no longer flap DOWN ↔ PARTIAL', () => {
    const edited = applyLifecycle(configured(), lc('active', 2, 2000, { downQuorumPct: 50 }), policy).target;
    expect(edited).toMatchObject({ downQuorumPct: 50, status: S.Up });
    // eu has read its new assignment (50 %), us still runs the old one (the site's): every interval, one of each.
    const { target, events } = run(
      [
        withQuorum(result('eu', false, 3000), 50),
        withQuorum(result('us', true, 3000), null),
        withQuorum(result('eu', false, 4000), 50),
        withQuorum(result('us', true, 4000), null),
      ],
      edited,
    );
    expect(ev(events)).toEqual(['eu:UP>DOWN', 'target:UP>DOWN']);
    expect(target).toMatchObject({ status: S.Down, downQuorumPct: 50 });
    // And the other way round: back to the site's, a result still run with 50 % does not make it DOWN again.
    const back = applyLifecycle(target, lc('active', 3, 5000, { downQuorumPct: null }), policy);
    expect(ev(back.events)).toEqual(['target:DOWN>PARTIAL']);
    const late = applyObservation(back.target, withQuorum(result('eu', false, 6000), 50), policy).target;
    expect(late).toMatchObject({ status: S.Partial, downQuorumPct: null });
  });

  it('an edit takes effect at once: the consensus is judged again with the new quorum, in an event dated by the write', () => {
    const partial = run([withQuorum(result('eu', false, 1500), null)], configured()).target;
    expect(partial.status).toBe(S.Partial);
    const r = applyLifecycle(partial, lc('active', 2, 2000, { downQuorumPct: 50 }), policy);
    expect(ev(r.events)).toEqual(['target:PARTIAL>DOWN']);
    expect(r.events[0]).toMatchObject({ at: 2000, sequence: partial.seq + 1 });
    expect(r.events[0].reason).toContain('quorum');
    expect(r.target).toMatchObject({ status: S.Down, since: 2000, downQuorumPct: 50, seq: partial.seq + 1 });
    // Raised to 100 %: PARTIAL again, at once.
    const raised = applyLifecycle(r.target, lc('active', 3, 3000, { downQuorumPct: 100 }), policy);
    expect(ev(raised.events)).toEqual(['target:DOWN>PARTIAL']);
    // The same quorum again (a rename): no event.
    expect(applyLifecycle(raised.target, lc('active', 4, 4000, { downQuorumPct: 100 }), policy).events).toEqual([]);
  });

  it('not said (a sender from before): the quorum held stays; paused: no event, the resume judges with it', () => {
    const own = applyLifecycle(configured(), lc('active', 2, 2000, { downQuorumPct: 50 }), policy).target;
    expect(applyLifecycle(own, lc('active', 3, 3000), policy).target.downQuorumPct).toBe(50);
    const paused = applyLifecycle(own, lc('paused', 3, 3000), policy).target;
    const r = applyLifecycle(paused, lc('paused', 4, 4000, { downQuorumPct: 100 }), policy);
    expect(r.events).toEqual([]);
    expect(r.target).toMatchObject({ status: S.Paused, downQuorumPct: 100 });
  });

  it('one not told of by a lifecycle message (stored before them) still takes it from its results', () => {
    const t = run([withQuorum(result('eu', true, 1000), 50), withQuorum(result('us', false, 1000), 50)]).target;
    expect(t).toMatchObject({ status: S.Down, downQuorumPct: 50 });
  });
});

describe("a check's locations changed (locations)", () => {
  const ev = (events: Array<{ location: string | null; from: S; to: S }>) =>
    events.map((e) => `${e.location ?? 'target'}:${e.from}>${e.to}`);
  const fold = (t: TargetSnapshot, items: FoldItem[]) =>
    foldObservations(new Map([[ID, t]]), items, new Set(items.map((i) => i.id)), policy);
  const observation = (id: string, location: string, ok: boolean, at: number): FoldItem => ({
    type: 'observation',
    id,
    observation: result(location, ok, at),
  });
  const lifecycle = (id: string, version: number, at: number, locations: string[] | undefined): FoldItem => ({
    type: 'lifecycle',
    id,
    lifecycle: lc('active', version, at, locations === undefined ? {} : { locations }),
  });

  it('a location left out is dropped: to UNKNOWN in an event, the consensus over the rest, its state to be deleted', () => {
    // eu UP, us DOWN: PARTIAL (quorum 100 %).
    const partial = run([result('eu', true, 1000), result('us', false, 1000)]).target;
    expect(partial.status).toBe(S.Partial);
    const r = applyLifecycle(partial, lc('active', 2, 5000, { locations: ['eu'] }), policy);
    expect(ev(r.events)).toEqual(['us:DOWN>UNKNOWN', 'target:PARTIAL>UP']);
    expect(r.events.map((e) => [e.at, e.sequence])).toEqual([
      [5000, partial.seq + 1],
      [5000, partial.seq + 2],
    ]);
    expect(r.dropped).toEqual(['us']);
    expect(r.target).toMatchObject({ status: S.Up, since: 5000, configuredLocations: ['eu'] });
    expect(Object.keys(r.target.locations)).toEqual(['eu']);
  });

  it('a STALE location left out no longer holds the check STALE', () => {
    const t = applyExpiry(applyExpiry(upUp(), 'eu', 70_000, policy).target, 'us', 70_000, policy).target;
    expect(t.status).toBe(S.Stale);
    const withEu = applyObservation(t, result('eu', true, 80_000), policy).target;
    expect(withEu.status).toBe(S.Up); // one location reports: UP, the other stays STALE in the target
    const r = applyLifecycle(withEu, lc('active', 2, 90_000, { locations: ['eu'] }), policy);
    expect(ev(r.events)).toEqual(['us:STALE>UNKNOWN']);
    expect(statuses(r.target)).toBe('eu=UP');
    // Its deadline went with it: nothing expires there any more.
    const expiry = expireDeadlines(new Map([[ID, r.target]]), [{ targetId: ID, location: 'us' }], 10_000_000, policy);
    expect(expiry.events).toEqual([]);
  });

  it('a result from a location left out is history only (a collector that has not read its assignment yet)', () => {
    const r = fold(upUp(), [lifecycle('l2', 2, 5000, ['eu']), observation('r1', 'us', false, 6000)]);
    const t = r.targets.get(ID) as TargetSnapshot;
    expect(statuses(t)).toBe('eu=UP');
    expect(t.status).toBe(S.Up);
    expect(r.dropped).toEqual([{ targetId: ID, location: 'us' }]);
    expect(r.applied.has('r1')).toBe(false);
    // A configured location's result is folded as ever.
    const next = fold(t, [observation('r2', 'eu', false, 7000)]).targets.get(ID) as TargetSnapshot;
    expect(next.status).toBe(S.Down);
  });

  it('run again (a later version lists it): results from it count, and within one fold it is not deleted', () => {
    const r = fold(upUp(), [
      lifecycle('l2', 2, 5000, ['eu']),
      lifecycle('l3', 3, 6000, ['eu', 'us']),
      observation('r1', 'us', false, 7000),
    ]);
    const t = r.targets.get(ID) as TargetSnapshot;
    expect(statuses(t)).toBe('eu=UP us=DOWN');
    expect(r.dropped).toEqual([]);
  });

  it('empty (every location) or not said (a sender from before): nothing dropped, every location counts', () => {
    for (const locations of [[], undefined]) {
      const r = fold(upUp(), [lifecycle('l2', 2, 5000, locations), observation('r1', 'ap', false, 6000)]);
      expect(statuses(r.targets.get(ID) as TargetSnapshot)).toBe('eu=UP us=UP ap=DOWN');
      expect(r.dropped).toEqual([]);
    }
    // Not said keeps what an earlier version said.
    const held = applyLifecycle(upUp(), lc('active', 2, 5000, { locations: ['eu'] }), policy).target;
    expect(applyLifecycle(held, lc('active', 3, 6000), policy).target.configuredLocations).toEqual(['eu']);
  });

  it('moved off every location it held: the new ones wait for their first result, and read STALE when none comes', () => {
    const down = run([result('eu', false, 1000)]).target;
    const r = applyLifecycle(
      down,
      lc('active', 2, 5000, { locations: ['eu-west1'], checkIntervalSeconds: 30 }),
      policy,
    );
    expect(ev(r.events)).toEqual(['eu:DOWN>UNKNOWN', 'target:DOWN>UNKNOWN']);
    expect(r.target.locations['eu-west1']).toMatchObject({
      status: S.Unknown,
      // Nothing left to go by: awaited, as a new check's.
      deadline: { at: 5000 + 65_000, expireTo: S.Stale, reason: `no result within 2 × 30s${AWAITING_FIRST_RESULT}` },
    });
    // A mistyped location never reports: STALE, as the old locations would have gone.
    const expired = applyExpiry(r.target, 'eu-west1', 5000 + 65_001, policy);
    expect(ev(expired.events)).toEqual(['eu-west1:UNKNOWN>STALE', 'target:UNKNOWN>STALE']);
    // Its first result counts.
    expect(applyObservation(r.target, result('eu-west1', true, 6000), policy).target.status).toBe(S.Up);
  });

  it('a location added beside those held waits for its first result too, and reads STALE when none comes', () => {
    // [eu, us] → [eu, us, ap]: nothing dropped. ap's collector is down (or its name mistyped): it never reports.
    const added = applyLifecycle(
      upUp(),
      lc('active', 2, 5000, { locations: ['eu', 'us', 'ap'], checkIntervalSeconds: 30 }),
      policy,
    );
    expect(added.events).toEqual([]);
    expect(statuses(added.target)).toBe('eu=UP us=UP ap=UNKNOWN');
    expect(added.target.status).toBe(S.Up);
    expect(added.target.locations.ap).toMatchObject({
      status: S.Unknown,
      lastSeen: 0, // never heard (null in the API)
      deadline: { at: 5000 + 65_000, expireTo: S.Stale, reason: 'no result within 2 × 30s' },
    });
    // Nothing from ap: STALE there (the others report: the consensus stays theirs).
    const expired = applyExpiry(added.target, 'ap', 5000 + 65_001, policy);
    expect(ev(expired.events)).toEqual(['ap:UNKNOWN>STALE']);
    // Another write (a rename) lists it again: its deadline is not pushed back.
    const renamed = applyLifecycle(
      added.target,
      lc('active', 3, 30_000, { name: 'api2', locations: ['eu', 'us', 'ap'], checkIntervalSeconds: 30 }),
      policy,
    ).target;
    expect(renamed.locations.ap.deadline?.at).toBe(5000 + 65_000);
    // Its first result counts, even one stamped before the write (its collector's clock behind the owner's).
    const first = applyObservation(added.target, result('ap', false, 4000), policy);
    expect(ev(first.events)).toEqual(['ap:UNKNOWN>DOWN', 'target:UP>PARTIAL']);
  });

  it('a new check waits at each of its locations: one whose collectors never run it reads STALE, not UNKNOWN for ever', () => {
    const created = applyLifecycle(
      undefined,
      lc('active', 1, 5000, { name: 'api', locations: ['eu', 'us'], checkIntervalSeconds: 30 }),
      policy,
    );
    expect(created.events).toEqual([]);
    expect(statuses(created.target)).toBe('eu=UNKNOWN us=UNKNOWN');
    expect(created.target.status).toBe(S.Unknown);
    const eu = applyExpiry(created.target, 'eu', 5000 + 65_001, policy);
    expect(ev(eu.events)).toEqual(['eu:UNKNOWN>STALE']);
    // us reports: the check is UP there.
    expect(applyObservation(eu.target, result('us', true, 60_000), policy).target.status).toBe(S.Up);
    // Neither reports: the check is STALE ('Target stale' fires).
    const both = applyExpiry(eu.target, 'us', 5000 + 65_001, policy);
    expect(ev(both.events)).toEqual(['us:UNKNOWN>STALE', 'target:UNKNOWN>STALE']);
    // Every location (an empty list): which locations have a collector is not known here, so none waits.
    const everywhere = applyLifecycle(
      undefined,
      lc('active', 1, 5000, { name: 'api', locations: [], checkIntervalSeconds: 30 }),
      policy,
    );
    expect(everywhere.target.locations).toEqual({});
    // Nor without an interval (a sender from before; a push check waits for its first ping instead).
    expect(applyLifecycle(undefined, lc('active', 1, 5000, { locations: ['eu'] }), policy).target.locations).toEqual(
      {},
    );
  });

  it('a new check created paused: its locations PAUSED with nothing due; resumed, each waits and reads STALE when silent', () => {
    const created = applyLifecycle(
      undefined,
      lc('paused', 1, 5000, { name: 'api', locations: ['eu'], checkIntervalSeconds: 30 }),
      policy,
    );
    expect(ev(created.events)).toEqual(['target:UNKNOWN>PAUSED']);
    expect(statuses(created.target)).toBe('eu=PAUSED');
    expect(created.target.locations.eu.deadline).toBeNull();
    const resumed = applyLifecycle(
      created.target,
      lc('active', 2, 9000, {
        locations: ['eu'],
        checkIntervalSeconds: 30,
        resumeDeadline: { at: 9000 + 65_000, expireTo: S.Stale, reason: 'no result within 2 × 30s of the resume' },
      }),
      policy,
    ).target;
    expect(statuses(resumed)).toBe('eu=UNKNOWN');
    expect(ev(applyExpiry(resumed, 'eu', 9000 + 65_001, policy).events)).toEqual([
      'eu:UNKNOWN>STALE',
      'target:UNKNOWN>STALE',
    ]);
  });

  it('a result from a location the target holds is folded whatever the list says (a replica of the version before)', () => {
    // The list lags: an older replica applied a later lifecycle running us again without writing it, and folded us.
    const lagging = { ...upUp(), configuredLocations: ['eu'] };
    const r = fold(lagging, [observation('r1', 'us', false, 6000)]);
    expect(statuses(r.targets.get(ID) as TargetSnapshot)).toBe('eu=UP us=DOWN');
  });

  it('paused: the location goes, the check stays PAUSED; resumed, the rest wait for their first result', () => {
    const paused = applyLifecycle(upUp(), lc('paused', 2, 5000), policy).target;
    const r = applyLifecycle(paused, lc('paused', 3, 6000, { locations: ['eu'] }), policy);
    expect(ev(r.events)).toEqual(['us:PAUSED>UNKNOWN']);
    expect(r.target.status).toBe(S.Paused);
    const resumed = applyLifecycle(r.target, lc('active', 4, 7000, { locations: ['us'] }), policy);
    expect(ev(resumed.events)).toEqual(['eu:PAUSED>UNKNOWN', 'target:PAUSED>UNKNOWN']);
    expect(resumed.target.locations).toEqual({});
    // Moved while paused: no deadline runs (nothing goes STALE while paused).
    const moved = applyLifecycle(
      paused,
      lc('paused', 3, 6000, { locations: ['ap'], checkIntervalSeconds: 30 }),
      policy,
    ).target;
    expect(statuses(moved)).toBe('ap=PAUSED');
    expect(Object.values(moved.locations).every((l) => l.deadline === null)).toBe(true);
    expect(moved.status).toBe(S.Paused);
    // ...and resumed: ap waits for its first result, due two intervals on (a mistyped name reads STALE).
    const back = applyLifecycle(
      moved,
      lc('active', 4, 7000, {
        locations: ['ap'],
        checkIntervalSeconds: 30,
        resumeDeadline: { at: 7000 + 65_000, expireTo: S.Stale, reason: 'no result within 2 × 30s' },
      }),
      policy,
    ).target;
    expect(statuses(back)).toBe('ap=UNKNOWN');
    expect(back.locations.ap.deadline?.at).toBe(7000 + 65_000);
  });
});
