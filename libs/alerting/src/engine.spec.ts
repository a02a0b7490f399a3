import fc from 'fast-check';
import { TargetStatus } from '@fleetwatch/contracts';
import { stepAlert, nextDueAt, type AlertSeriesState, type AlertNotification } from './engine';
import {
  ABSENT_SERIES_GRACE_MS,
  alertIdentity,
  compileAlertRule,
  RESOLVED_RETENTION_MS,
  type CompiledAlertRule,
} from './rule';
import { MIN, SEC, T0, ruleOf, targetOf } from './testing/fixtures';

const rule = (over: Record<string, unknown> = {}) =>
  compileAlertRule(
    ruleOf('r1', { name: 'Down', condition: { type: 'status', statuses: [TargetStatus.Down] }, ...over }),
  );
const identity = (r: CompiledAlertRule) => alertIdentity(r.rule, targetOf('check:a'), {});

interface Step {
  /** Seconds after T0. */
  at: number;
  active: boolean;
  muted?: boolean;
  /** The series is missing from this evaluation (a metric rule's target that reports, without this figure). */
  absent?: boolean;
}
interface Outcome {
  state: string;
  notifications: string[];
}

/** Runs a series of evaluations and returns the state name and notification kinds after each. */
function run(
  r: CompiledAlertRule,
  steps: Step[],
  start?: AlertSeriesState,
): { outcomes: Outcome[]; last?: AlertSeriesState } {
  let state = start;
  const outcomes: Outcome[] = [];
  for (const s of steps) {
    const sample = s.absent ? { active: false, value: null, absent: true } : { active: s.active, value: null };
    const res = stepAlert(r, state, sample, identity(r), {
      now: T0 + s.at * SEC,
      isMuted: () => s.muted ?? false,
    });
    state = res.state;
    outcomes.push({ state: state?.state ?? 'inactive', notifications: res.notifications.map((n) => n.kind) });
  }
  return { outcomes, last: state };
}
const states = (o: Outcome[]) => o.map((x) => x.state);
const sent = (o: Outcome[]) => o.flatMap((x) => x.notifications);

describe('alert state machine (Prometheus `for` semantics)', () => {
  it.each([
    // for, evaluation times (s) with the condition holding throughout, expected states
    ['0s', [0, 10], ['firing', 'firing']],
    ['1m', [0, 30, 59], ['pending', 'pending', 'pending']],
    ['1m', [0, 30, 60], ['pending', 'pending', 'firing']],
    ['1m', [0, 61], ['pending', 'firing']],
    ['5m', [0, 60, 120, 299, 300, 600], ['pending', 'pending', 'pending', 'pending', 'firing', 'firing']],
  ])('for %s: pending turns firing only once the condition held that long (%j)', (forText, times, expected) => {
    const { outcomes } = run(
      rule({ for: forText }),
      (times as number[]).map((at) => ({ at, active: true })),
    );
    expect(states(outcomes)).toEqual(expected);
    // Exactly one firing notification, at the evaluation that turned it firing.
    expect(sent(outcomes)).toEqual((expected as string[]).includes('firing') ? ['firing'] : []);
  });

  it.each([
    [
      'down 50 s, up, down 50 s, up',
      [
        [0, true],
        [50, false],
        [60, true],
        [110, false],
      ],
    ],
    ['down/up every 30 s for 10 min', Array.from({ length: 20 }, (_, i) => [i * 30, i % 2 === 0])],
    [
      'down 59 s then up, repeatedly',
      [
        [0, true],
        [59, false],
        [60, true],
        [119, false],
        [120, true],
        [179, false],
      ],
    ],
  ])('flapping below `for` (1m) never fires: %s', (_name, seq) => {
    const { outcomes, last } = run(
      rule({ for: '1m' }),
      (seq as Array<[number, boolean]>).map(([at, active]) => ({ at, active })),
    );
    expect(states(outcomes)).not.toContain('firing');
    expect(sent(outcomes)).toEqual([]);
    expect(last).toBeUndefined();
  });

  it('a pending alert whose condition stops holding is dropped (inactive), then starts over', () => {
    const { outcomes } = run(rule({ for: '1m' }), [
      { at: 0, active: true },
      { at: 45, active: false },
      { at: 50, active: true },
      { at: 100, active: true },
      { at: 110, active: true },
    ]);
    expect(states(outcomes)).toEqual(['pending', 'inactive', 'pending', 'pending', 'firing']);
  });

  it('resolves, notifies resolved once, and is forgotten after the retention', () => {
    const r = rule({ for: '1m' });
    const { outcomes, last } = run(r, [
      { at: 0, active: true },
      { at: 60, active: true },
      { at: 90, active: false },
      { at: 120, active: false },
    ]);
    expect(outcomes).toEqual([
      { state: 'pending', notifications: [] },
      { state: 'firing', notifications: ['firing'] },
      { state: 'resolved', notifications: ['resolved'] },
      { state: 'resolved', notifications: [] },
    ]);
    expect(last).toMatchObject({ activeAt: T0, firedAt: T0 + 60 * SEC, resolvedAt: T0 + 90 * SEC });
    const later = stepAlert(r, last, { active: false, value: null }, identity(r), {
      now: T0 + 90 * SEC + RESOLVED_RETENTION_MS,
    });
    expect(later.state).toBeUndefined();
    expect(later.transition).toMatchObject({ from: 'resolved', to: 'inactive' });
  });

  it('a resolved alert whose condition holds again starts a new episode (pending, a new firing notification)', () => {
    const { outcomes } = run(rule({ for: '1m' }), [
      { at: 0, active: true },
      { at: 60, active: true },
      { at: 70, active: false },
      { at: 80, active: true },
      { at: 140, active: true },
    ]);
    expect(outcomes.map((o) => [o.state, ...o.notifications])).toEqual([
      ['pending'],
      ['firing', 'firing'],
      ['resolved', 'resolved'],
      ['pending'],
      ['firing', 'firing'],
    ]);
  });

  it('a new episode after the rule was edited carries the rule as it is now (labels, severity, mute check)', () => {
    const before = rule({ severity: 'warning', labels: { team: 'web' } });
    const fired = run(before, [
      { at: 0, active: true },
      { at: 60, active: false },
    ]);
    expect(fired.last?.state).toBe('resolved');
    // Edited within the resolved alert's retention: now critical and the db team's.
    const after = rule({ severity: 'critical', labels: { team: 'db' } });
    const asked: Array<Readonly<Record<string, string>>> = [];
    const again = stepAlert(after, fired.last, { active: true, value: null }, identity(after), {
      now: T0 + 120 * SEC,
      isMuted: (labels) => {
        asked.push(labels);
        return false;
      },
    });
    expect(again.notifications.map((n) => [n.kind, n.labels['severity'], n.labels['team']])).toEqual([
      ['firing', 'critical', 'db'],
    ]);
    expect(again.state?.fingerprint).toBe(identity(after).fingerprint);
    expect(asked.map((l) => l['severity'])).toEqual(['critical']);
  });

  it('keepFiringFor keeps a firing alert up through short gaps and resolves after it', () => {
    const { outcomes } = run(rule({ for: '0s', keepFiringFor: '2m' }), [
      { at: 0, active: true },
      { at: 60, active: false },
      { at: 120, active: true },
      { at: 130, active: false },
      { at: 249, active: false },
      { at: 250, active: false },
    ]);
    expect(states(outcomes)).toEqual(['firing', 'firing', 'firing', 'firing', 'firing', 'resolved']);
    expect(sent(outcomes)).toEqual(['firing', 'resolved']);
  });

  describe('a series missing from evaluations (no figure is not "condition false")', () => {
    it('a firing alert keeps firing through a gap shorter than the grace (5 min): no resolve + re-fire', () => {
      const { outcomes, last } = run(rule({ for: '0s' }), [
        { at: 0, active: true },
        { at: 60, active: false, absent: true },
        { at: 299, active: false, absent: true },
        { at: 300, active: true },
      ]);
      expect(states(outcomes)).toEqual(['firing', 'firing', 'firing', 'firing']);
      expect(sent(outcomes)).toEqual(['firing']);
      expect([last?.activeAt, last?.absentSince]).toEqual([T0, undefined]);
    });

    it('absent for the grace: resolved, once, with the reason "series_absent" (its notification says since when)', () => {
      const r = rule({ for: '0s' });
      const { last } = run(r, [
        { at: 0, active: true },
        { at: 60, active: false, absent: true },
      ]);
      expect(last?.absentSince).toBe(T0 + 60 * SEC);
      expect(nextDueAt(r, last)).toBe(T0 + 60 * SEC + ABSENT_SERIES_GRACE_MS);
      const before = stepAlert(r, last, { active: false, value: null, absent: true }, identity(r), {
        now: T0 + 60 * SEC + ABSENT_SERIES_GRACE_MS - 1,
      });
      expect(before.state).toBe(last);
      const end = stepAlert(r, last, { active: false, value: null, absent: true }, identity(r), {
        now: T0 + 60 * SEC + ABSENT_SERIES_GRACE_MS,
      });
      expect(end.state).toMatchObject({ state: 'resolved', resolvedAt: T0 + 60 * SEC + ABSENT_SERIES_GRACE_MS });
      expect(end.state?.absentSince).toBeUndefined();
      expect(end.notifications.map((n) => [n.kind, n.endReason, n.absentSince])).toEqual([
        ['resolved', 'series_absent', T0 + 60 * SEC],
      ]);
      expect(end.transition).toMatchObject({ from: 'firing', to: 'resolved', reason: 'series_absent' });
    });

    it('the grace scales with how often the target reports: two of its intervals, never under 5 min', () => {
      const r = rule({ for: '0s' });
      const tenMin = 10 * MIN;
      const { last } = run(r, [
        { at: 0, active: true },
        { at: 60, active: false, absent: true },
      ]);
      const since = T0 + 60 * SEC;
      const absent = { active: false, value: null, absent: true };
      const at = (now: number, reportIntervalMs: number | null) =>
        stepAlert(r, last, absent, identity(r), { now, reportIntervalMs });
      // A check run every 10 min: a gap of 5 min (or 19:59) is one missed run, not its data gone.
      expect(at(since + ABSENT_SERIES_GRACE_MS, tenMin).state).toBe(last);
      expect(at(since + 2 * tenMin - 1, tenMin).state).toBe(last);
      expect(nextDueAt(r, last, tenMin)).toBe(since + 2 * tenMin);
      const end = at(since + 2 * tenMin, tenMin);
      expect(end.state).toMatchObject({ state: 'resolved', resolvedAt: since + 2 * tenMin });
      expect(end.notifications.map((n) => [n.kind, n.endReason, n.absentSince])).toEqual([
        ['resolved', 'series_absent', since],
      ]);
      // The history is told since when too.
      expect(end.transition).toMatchObject({
        from: 'firing',
        to: 'resolved',
        reason: 'series_absent',
        absentSince: since,
      });
      // A host sampling every 15 s (or an interval unknown): the 5 minutes.
      expect(at(since + ABSENT_SERIES_GRACE_MS, 15 * SEC).state?.state).toBe('resolved');
      expect(at(since + ABSENT_SERIES_GRACE_MS, null).state?.state).toBe('resolved');
      expect(nextDueAt(r, last, 15 * SEC)).toBe(since + ABSENT_SERIES_GRACE_MS);
      // Hourly: two hours.
      expect(at(since + 2 * 60 * MIN - 1, 60 * MIN).state).toBe(last);
      expect(at(since + 2 * 60 * MIN, 60 * MIN).state?.state).toBe('resolved');
    });

    it('a keepFiringFor longer than the grace counts instead', () => {
      const { outcomes } = run(rule({ for: '0s', keepFiringFor: '10m' }), [
        { at: 0, active: true },
        { at: 60, active: false, absent: true },
        { at: 60 + 599, active: false, absent: true },
        { at: 60 + 600, active: false, absent: true },
      ]);
      expect(states(outcomes)).toEqual(['firing', 'firing', 'firing', 'resolved']);
    });

    it('kept firing already (its last figure said the condition stopped): keepFiringFor goes on counting down', () => {
      const { outcomes } = run(rule({ for: '0s', keepFiringFor: '2m' }), [
        { at: 0, active: true },
        { at: 60, active: false },
        { at: 90, active: false, absent: true },
        { at: 180, active: false, absent: true },
      ]);
      expect(states(outcomes)).toEqual(['firing', 'firing', 'firing', 'resolved']);
    });

    it('a pending alert neither fires on no figure nor is dropped by a gap; dropped after the grace', () => {
      const r = rule({ for: '1m' });
      const gap = run(r, [
        { at: 0, active: true },
        { at: 30, active: false, absent: true },
        { at: 90, active: false, absent: true },
        { at: 100, active: true },
      ]);
      expect(states(gap.outcomes)).toEqual(['pending', 'pending', 'pending', 'firing']);
      const pendingAbsent = run(r, [
        { at: 0, active: true },
        { at: 30, active: false, absent: true },
      ]).last;
      // Due at the grace's end only (not every tick from `for` on: it cannot fire without a figure).
      expect(nextDueAt(r, pendingAbsent)).toBe(T0 + 30 * SEC + ABSENT_SERIES_GRACE_MS);
      const dropped = stepAlert(r, pendingAbsent, { active: false, value: null, absent: true }, identity(r), {
        now: T0 + 30 * SEC + ABSENT_SERIES_GRACE_MS,
      });
      expect(dropped.state).toBeUndefined();
      expect(dropped.notifications).toEqual([]);
      expect(dropped.transition).toMatchObject({ from: 'pending', to: 'inactive', reason: 'series_absent' });
    });

    it('a figure back, not holding: resolves as usual (condition_cleared); the gap does not start over', () => {
      const { outcomes } = run(rule({ for: '0s' }), [
        { at: 0, active: true },
        { at: 60, active: false, absent: true },
        { at: 120, active: false },
        { at: 130, active: true },
        { at: 140, active: false, absent: true },
        { at: 140 + 299, active: false, absent: true },
      ]);
      expect(states(outcomes)).toEqual(['firing', 'firing', 'resolved', 'firing', 'firing', 'firing']);
      const { last } = run(rule({ for: '0s' }), [
        { at: 0, active: true },
        { at: 60, active: false, absent: true },
      ]);
      const r = rule({ for: '0s' });
      const back = stepAlert(r, last, { active: false, value: 10 }, identity(r), { now: T0 + 120 * SEC });
      expect(back.transition).toMatchObject({ from: 'firing', to: 'resolved', reason: 'condition_cleared' });
      expect(back.notifications.map((n) => [n.kind, n.endReason, n.absentSince])).toEqual([
        ['resolved', 'condition_cleared', undefined],
      ]);
    });

    it('a firing alert repeats while its series is missing (it still fires)', () => {
      const { outcomes } = run(rule({ for: '0s', repeatInterval: '1m' }), [
        { at: 0, active: true },
        { at: 60, active: false, absent: true },
      ]);
      expect(outcomes.map((o) => o.notifications)).toEqual([['firing'], ['repeat']]);
    });
  });

  it('repeats a still-firing alert every repeat interval, not more often', () => {
    const { outcomes } = run(rule({ repeatInterval: '10m' }), [
      { at: 0, active: true },
      { at: 300, active: true },
      { at: 599, active: true },
      { at: 600, active: true },
      { at: 900, active: true },
      { at: 1200, active: true },
    ]);
    expect(outcomes.map((o) => o.notifications)).toEqual([['firing'], [], [], ['repeat'], [], ['repeat']]);
  });

  it('a muted alert is not notified; once the mute ends it is, and its resolution too', () => {
    const { outcomes } = run(rule(), [
      { at: 0, active: true, muted: true },
      { at: 60, active: true, muted: true },
      { at: 120, active: true, muted: false },
      { at: 180, active: false, muted: true },
    ]);
    expect(outcomes.map((o) => o.notifications)).toEqual([[], [], ['firing'], ['resolved']]);
  });

  it('an alert muted for its whole life sends nothing, not even resolved', () => {
    const { outcomes } = run(rule(), [
      { at: 0, active: true, muted: true },
      { at: 60, active: false, muted: true },
    ]);
    expect(sent(outcomes)).toEqual([]);
  });

  it('an unchanged alert returns the same state object (nothing to write)', () => {
    const r = rule();
    const first = stepAlert(r, undefined, { active: true, value: null }, identity(r), { now: T0 });
    const again = stepAlert(r, first.state, { active: true, value: null }, identity(r), { now: T0 + SEC });
    expect(again.state).toBe(first.state);
    expect(again.transition).toBeNull();
  });

  it('nextDueAt says when pending turns firing and when a repeat is due', () => {
    const r = rule({ for: '5m', repeatInterval: '1h' });
    const p = stepAlert(r, undefined, { active: true, value: null }, identity(r), { now: T0 }).state;
    expect(nextDueAt(r, p)).toBe(T0 + 5 * MIN);
    const f = stepAlert(r, p, { active: true, value: null }, identity(r), { now: T0 + 5 * MIN }).state;
    expect(nextDueAt(r, f)).toBe(T0 + 65 * MIN);
  });

  it('nextDueAt while kept firing: the sooner of its end and its next repeat', () => {
    const r = rule({ for: '0s', keepFiringFor: '1d', repeatInterval: '1h' });
    const fired = stepAlert(r, undefined, { active: true, value: null }, identity(r), { now: T0 }).state;
    const kept = stepAlert(r, fired, { active: false, value: null }, identity(r), { now: T0 + 10 * MIN }).state;
    expect(kept?.state).toBe('firing');
    expect(kept?.keepFiringSince).toBe(T0 + 10 * MIN);
    // Its hourly repeat (due T0 + 1 h) comes before the end of a day of keepFiringFor.
    expect(nextDueAt(r, kept)).toBe(T0 + 60 * MIN);
    const short = rule({ for: '0s', keepFiringFor: '2m', repeatInterval: '1h' });
    const f2 = stepAlert(short, undefined, { active: true, value: null }, identity(short), { now: T0 }).state;
    const k2 = stepAlert(short, f2, { active: false, value: null }, identity(short), { now: T0 + 10 * MIN }).state;
    expect(nextDueAt(short, k2)).toBe(T0 + 12 * MIN);
  });
});

describe('alert state machine properties', () => {
  const forSeconds = fc.integer({ min: 10, max: 600 });

  it('a signal whose every active run is shorter than `for` never fires', () => {
    fc.assert(
      fc.property(
        forSeconds,
        fc.array(fc.tuple(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 })), { maxLength: 30 }),
        (forS, runs) => {
          const r = rule({ for: `${forS}s` });
          let t = 0;
          const steps: Step[] = [];
          for (const [upLen, gap] of runs) {
            const len = Math.min(upLen, forS - 1);
            // Evaluations every second while active (the densest possible), then one that sees it inactive.
            for (let i = 0; i <= len; i += Math.max(1, Math.floor(len / 5))) steps.push({ at: t + i, active: true });
            steps.push({ at: t + len, active: true });
            t += len + 1;
            steps.push({ at: t, active: false });
            t += gap;
          }
          const { outcomes } = run(r, steps);
          expect(sent(outcomes)).toEqual([]);
          expect(states(outcomes)).not.toContain('firing');
        },
      ),
    );
  });

  it('restoring a persisted state (JSON) and continuing equals never restarting', () => {
    const step = fc.record({
      dt: fc.integer({ min: 0, max: 400 }),
      active: fc.boolean(),
      muted: fc.boolean(),
      absent: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.constantFrom('0s', '30s', '1m', '5m'),
        fc.option(fc.constantFrom('1m', '3m'), { nil: undefined }),
        fc.array(step, { minLength: 1, maxLength: 60 }),
        fc.nat(),
        (forText, keep, seq, cutAt) => {
          const r = rule({ for: forText, keepFiringFor: keep, repeatInterval: '5m' });
          const cut = cutAt % seq.length;
          let at = 0;
          const steps = seq.map((s) => ({ at: (at += s.dt), active: s.active, muted: s.muted, absent: s.absent }));
          const straight = run(r, steps);
          const before = run(r, steps.slice(0, cut));
          const restored = before.last ? (JSON.parse(JSON.stringify(before.last)) as AlertSeriesState) : undefined;
          const after = run(r, steps.slice(cut), restored);
          expect([...before.outcomes, ...after.outcomes]).toEqual(straight.outcomes);
          expect(after.last).toEqual(straight.last);
        },
      ),
    );
  });

  it('every firing notification is eventually matched by at most one resolved, and resolved only follows firing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ dt: fc.integer({ min: 1, max: 200 }), active: fc.boolean(), absent: fc.boolean() }), {
          maxLength: 80,
        }),
        (seq) => {
          let at = 0;
          const { outcomes } = run(
            rule({ for: '1m' }),
            seq.map((s) => ({ at: (at += s.dt), active: s.active, absent: s.absent })),
          );
          let open = false;
          for (const kind of sent(outcomes) as AlertNotification['kind'][]) {
            if (kind === 'firing') {
              expect(open).toBe(false);
              open = true;
            } else if (kind === 'resolved') {
              expect(open).toBe(true);
              open = false;
            } else expect(open).toBe(true);
          }
        },
      ),
    );
  });
});
