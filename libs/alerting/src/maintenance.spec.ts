import { CronDate } from 'cron-parser';
import { TargetKind, maintenanceWindowSpecSchema, type MaintenanceWindow } from '@fleetwatch/contracts';
import { cronProblem, maintenanceCovers, maintenanceFor, nextOpening, openWindow, openingsWithin } from './maintenance';
import { targetOf } from './testing/fixtures';

function window(
  schedule: Record<string, unknown>,
  scope: Record<string, unknown> = { tags: ['db'] },
): MaintenanceWindow {
  return { id: 'w', ...maintenanceWindowSpecSchema.parse({ name: 'w', createdBy: 'alice', scope, schedule }) };
}
const at = (iso: string) => Date.parse(iso);
const open = (w: MaintenanceWindow, iso: string) => openWindow(w.schedule, at(iso)) !== null;

describe('maintenance windows', () => {
  it('one-off: open in [startsAt, endsAt)', () => {
    const w = window({ type: 'once', startsAt: '2026-05-01T10:00:00Z', endsAt: '2026-05-01T11:00:00Z' });
    expect(
      ['2026-05-01T09:59:59Z', '2026-05-01T10:00:00Z', '2026-05-01T10:59:59Z', '2026-05-01T11:00:00Z'].map((t) =>
        open(w, t),
      ),
    ).toEqual([false, true, true, false]);
  });

  it.each([
    // Tuesdays 22:00 UTC for 2 h (2026-05-05 is a Tuesday).
    ['2026-05-05T21:59:00Z', false],
    ['2026-05-05T22:00:00Z', true], // on the occurrence itself
    ['2026-05-06T00:00:00Z', false], // end is exclusive
    ['2026-05-05T23:59:59Z', true],
    ['2026-05-12T23:00:00Z', true],
    ['2026-05-13T22:30:00Z', false], // Wednesday
  ])('recurring weekly, at %s open: %s', (t, expected) => {
    const w = window({ type: 'recurring', cron: '0 22 * * 2', duration: '2h', timezone: 'UTC' });
    expect(open(w, t)).toBe(expected);
  });

  it('a window longer than the gap between occurrences stays open across them (latest occurrence wins)', () => {
    const w = window({ type: 'recurring', cron: '0 * * * *', duration: '90m' });
    expect(openWindow(w.schedule, at('2026-05-05T10:45:00Z'))).toEqual({
      start: at('2026-05-05T10:00:00Z'),
      end: at('2026-05-05T11:30:00Z'),
    });
  });

  describe('DST (Europe/Berlin)', () => {
    const daily9 = window({ type: 'recurring', cron: '0 9 * * *', duration: '1h', timezone: 'Europe/Berlin' });
    it.each([
      // Summer time (UTC+2): 09:00 local = 07:00 UTC.
      ['2026-10-24T07:30:00Z', true],
      ['2026-10-24T08:30:00Z', false],
      // 2026-10-25 03:00 CEST → 02:00 CET. Winter time (UTC+1): 09:00 local = 08:00 UTC.
      ['2026-10-26T07:30:00Z', false],
      ['2026-10-26T08:30:00Z', true],
      // Spring: 2026-03-29 02:00 CET → 03:00 CEST.
      ['2026-03-28T08:30:00Z', true],
      ['2026-03-29T07:30:00Z', true],
      ['2026-03-29T08:30:00Z', false],
    ])('09:00 local daily for 1 h, at %s open: %s', (t, expected) => {
      expect(open(daily9, t)).toBe(expected);
    });

    it('a duration is elapsed time: 01:00 local + 2 h on the spring-forward night ends 04:00 CEST', () => {
      const w = window({ type: 'recurring', cron: '0 1 * * *', duration: '2h', timezone: 'Europe/Berlin' });
      expect(openWindow(w.schedule, at('2026-03-29T01:30:00Z'))).toEqual({
        start: at('2026-03-29T00:00:00Z'), // 01:00 CET
        end: at('2026-03-29T02:00:00Z'), // 04:00 CEST
      });
    });

    it('a start time the clock jumps over (02:30 on spring-forward) opens as far after the jump (03:30 CEST)', () => {
      const w = window({ type: 'recurring', cron: '30 2 * * *', duration: '1h', timezone: 'Europe/Berlin' });
      expect(open(w, '2026-03-28T01:45:00Z')).toBe(true); // 02:45 CET the day before
      expect(open(w, '2026-03-29T01:15:00Z')).toBe(false); // 03:15 CEST: not yet
      expect(openWindow(w.schedule, at('2026-03-29T01:45:00Z'))).toEqual({
        start: at('2026-03-29T01:30:00Z'), // 03:30 CEST
        end: at('2026-03-29T02:30:00Z'),
      });
      expect(open(w, '2026-03-30T00:45:00Z')).toBe(true); // 02:45 CEST the day after
      expect(nextOpening(w.schedule, at('2026-03-28T12:00:00Z'))).toBe(at('2026-03-29T01:30:00Z'));
      expect(nextOpening(w.schedule, at('2026-03-29T01:30:00Z'))).toBe(at('2026-03-30T00:30:00Z'));
    });

    it('a start time the clock passes twice (02:30 on fall-back) is next at its second pass too, where it opens', () => {
      // 02:30 CEST is 00:30Z, 02:30 CET 01:30Z: openWindow opens at both; nextOpening from between them said the
      // next day's (cron-parser's next() passes the second over).
      const w = window({ type: 'recurring', cron: '30 2 * * *', duration: '10m', timezone: 'Europe/Berlin' });
      expect(openWindow(w.schedule, at('2026-10-25T01:35:00Z'))).toEqual({
        start: at('2026-10-25T01:30:00Z'),
        end: at('2026-10-25T01:40:00Z'),
      });
      expect(nextOpening(w.schedule, at('2026-10-24T12:00:00Z'))).toBe(at('2026-10-25T00:30:00Z'));
      expect(nextOpening(w.schedule, at('2026-10-25T00:40:00Z'))).toBe(at('2026-10-25T01:30:00Z'));
      expect(nextOpening(w.schedule, at('2026-10-25T01:30:00Z'))).toBe(at('2026-10-26T01:30:00Z'));
    });

    it('a nightly window from 02:00 is open through the spring-forward night (it stayed shut: people paged)', () => {
      const w = window({ type: 'recurring', cron: '0 2 * * *', duration: '2h', timezone: 'Europe/Berlin' });
      // 03:30 CEST, inside 02:00–04:00 local: open from the jump (03:00 CEST) for 2 h of elapsed time.
      expect(openWindow(w.schedule, at('2026-03-29T01:30:00Z'))).toEqual({
        start: at('2026-03-29T01:00:00Z'),
        end: at('2026-03-29T03:00:00Z'),
      });
      // New York, 02:30 on its spring-forward night (2026-03-08): 03:45 EDT.
      const ny = window({ type: 'recurring', cron: '30 2 * * *', duration: '1h', timezone: 'America/New_York' });
      expect(openWindow(ny.schedule, at('2026-03-08T07:45:00Z'))?.start).toBe(at('2026-03-08T07:30:00Z'));
    });

    it('a time the clock passes twice (02:30 on fall-back) opens at both, as before', () => {
      const w = window({ type: 'recurring', cron: '30 2 * * *', duration: '10m', timezone: 'Europe/Berlin' });
      expect(open(w, '2026-10-25T00:35:00Z')).toBe(true); // 02:35 CEST
      expect(open(w, '2026-10-25T01:00:00Z')).toBe(false);
      expect(open(w, '2026-10-25T01:35:00Z')).toBe(true); // 02:35 CET
    });
  });

  describe('Australia/Lord_Howe (its clock moves 30 minutes)', () => {
    // 2026-04-05 02:00 LHDT (+11, 15:00Z) → 01:30 LHST (+10:30); 2026-10-04 02:00 LHST (15:30Z) → 02:30 LHDT.
    const lh = (cron: string, duration: string) =>
      window({ type: 'recurring', cron, duration, timezone: 'Australia/Lord_Howe' });

    it('each check reads a bounded number of dates (cron-parser ran into its 10,000-step limit, 0.15–1.3 s a check)', () => {
      // Counted, not timed: cron-parser's date steps over a day of mute checks on both sides of each change.
      const steps = jest.spyOn(CronDate.prototype, 'applyDateOperation');
      try {
        let worst = 0;
        for (const cron of ['0 2 * * *', '15 2 * * *', '0 2 * * 0', '0 3 * * *', '0 * * * *']) {
          const w = lh(cron, '1h');
          for (const start of ['2026-04-04T12:00:00Z', '2026-10-03T12:00:00Z'])
            for (let t = at(start); t < at(start) + 86_400_000; t += 20 * 60_000) {
              steps.mockClear();
              openWindow(w.schedule, t);
              nextOpening(w.schedule, t);
              worst = Math.max(worst, steps.mock.calls.length);
            }
        }
        expect(worst).toBeLessThan(2_000);
      } finally {
        steps.mockRestore();
      }
    });

    it('a time the clock jumps over (02:00 in October) opens at the jump, and the next day at 02:00 again', () => {
      const w = lh('0 2 * * *', '1h');
      expect(openWindow(w.schedule, at('2026-10-03T15:40:00Z'))).toEqual({
        start: at('2026-10-03T15:30:00Z'), // 02:30 LHDT
        end: at('2026-10-03T16:30:00Z'),
      });
      expect(nextOpening(w.schedule, at('2026-10-03T12:00:00Z'))).toBe(at('2026-10-03T15:30:00Z'));
      expect(nextOpening(w.schedule, at('2026-10-03T15:30:00Z'))).toBe(at('2026-10-04T15:00:00Z')); // 02:00 LHDT
      expect(open(w, '2026-10-04T15:10:00Z')).toBe(true);
      // A weekly window of 3 days from that Sunday's 02:00 is open all week-end long (prev() threw for days).
      const weekly = lh('0 2 * * 0', '3d');
      expect(openWindow(weekly.schedule, at('2026-10-05T12:00:00Z'))?.start).toBe(at('2026-10-03T15:30:00Z'));
    });

    it('a time the clock passes twice (01:45 in April) opens at both; 02:00 that night once, in LHST', () => {
      const w = lh('45 1 * * *', '10m');
      expect(openWindow(w.schedule, at('2026-04-04T14:50:00Z'))?.start).toBe(at('2026-04-04T14:45:00Z')); // LHDT
      expect(nextOpening(w.schedule, at('2026-04-04T14:50:00Z'))).toBe(at('2026-04-04T15:15:00Z')); // LHST
      expect(openWindow(w.schedule, at('2026-04-04T15:20:00Z'))?.start).toBe(at('2026-04-04T15:15:00Z'));
      const two = lh('0 2 * * *', '1h');
      expect(nextOpening(two.schedule, at('2026-04-04T12:00:00Z'))).toBe(at('2026-04-04T15:30:00Z'));
      expect(openWindow(two.schedule, at('2026-04-04T15:10:00Z'))).toBeNull();
    });
  });

  it('until: the latest occurrence before it still covers what its duration covers', () => {
    const w = window({
      type: 'recurring',
      cron: '0 * * * *',
      duration: '2h',
      until: '2026-05-05T10:00:00Z',
    });
    // The 09:00 occurrence runs to 11:00; the 10:00 one is not in the series.
    expect(openWindow(w.schedule, at('2026-05-05T10:30:00Z'))).toEqual({
      start: at('2026-05-05T09:00:00Z'),
      end: at('2026-05-05T11:00:00Z'),
    });
    expect(open(w, '2026-05-05T11:00:00Z')).toBe(false);
  });

  it('from/until bound a recurring series', () => {
    const w = window({
      type: 'recurring',
      cron: '0 22 * * *',
      duration: '1h',
      from: '2026-05-05T00:00:00Z',
      until: '2026-05-07T00:00:00Z',
    });
    expect(open(w, '2026-05-04T22:30:00Z')).toBe(false);
    expect(open(w, '2026-05-05T22:30:00Z')).toBe(true);
    expect(open(w, '2026-05-06T22:30:00Z')).toBe(true);
    expect(open(w, '2026-05-07T22:30:00Z')).toBe(false);
    expect(nextOpening(w.schedule, at('2026-05-01T00:00:00Z'))).toBe(at('2026-05-05T22:00:00Z'));
    expect(nextOpening(w.schedule, at('2026-05-06T23:00:00Z'))).toBeNull();
  });

  it('covers targets by id, tag or site', () => {
    const w = window(
      { type: 'once', startsAt: '2026-05-01T10:00:00Z', endsAt: '2026-05-01T11:00:00Z' },
      {
        targetIds: ['check:a'],
        tags: ['db'],
        sites: ['lab'],
      },
    );
    expect(maintenanceCovers(w, targetOf('check:a'))).toBe(true);
    expect(maintenanceCovers(w, targetOf('check:b', { tags: ['web', 'db'] }))).toBe(true);
    expect(maintenanceCovers(w, targetOf('host:h', { kind: TargetKind.Host, site: 'lab' }))).toBe(true);
    expect(maintenanceCovers(w, targetOf('check:c', { tags: ['web'] }))).toBe(false);
    expect(maintenanceFor([w], targetOf('check:a'), at('2026-05-01T10:30:00Z'))).toEqual([w]);
    expect(maintenanceFor([w], targetOf('check:a'), at('2026-05-01T11:30:00Z'))).toEqual([]);
  });

  it('says what is wrong with a cron expression the contract let through', () => {
    expect(cronProblem('0 9 * * 1-5', 'Europe/Berlin')).toBeNull();
    expect(cronProblem('61 * * * *')).toMatch(/61/);
    expect(cronProblem('0 9 31 2 *')).not.toBeNull(); // 31 February never comes
  });
});

describe('openingsWithin: when a window was open over a past range (status pages)', () => {
  const span = (a: string, b: string) => ({ start: at(a), end: at(b) });
  const within = (w: MaintenanceWindow, a: string, b: string, maxSteps?: number) =>
    openingsWithin(w.schedule, at(a), at(b), maxSteps).open;
  /** Each time in [a, b) every 10 minutes: open per openingsWithin exactly where openWindow calls it open. */
  const agreesWithOpenWindow = (w: MaintenanceWindow, a: string, b: string) => {
    const got = within(w, a, b);
    const wrong: string[] = [];
    for (let t = at(a); t < at(b); t += 10 * 60_000)
      if (got.some((i) => i.start <= t && t < i.end) !== (openWindow(w.schedule, t) !== null))
        wrong.push(new Date(t).toISOString());
    expect(wrong).toEqual([]);
  };

  it('one-off: itself when it overlaps the range, else nothing', () => {
    const w = window({ type: 'once', startsAt: '2026-05-01T10:00:00Z', endsAt: '2026-05-01T11:00:00Z' });
    expect(within(w, '2026-04-01T00:00:00Z', '2026-06-01T00:00:00Z')).toEqual([
      span('2026-05-01T10:00:00Z', '2026-05-01T11:00:00Z'),
    ]);
    expect(within(w, '2026-05-01T11:00:00Z', '2026-06-01T00:00:00Z')).toEqual([]);
    expect(within(w, '2026-04-01T00:00:00Z', '2026-05-01T10:00:00Z')).toEqual([]);
  });

  it('recurring: each opening in the range, one that began before it included, within from/until', () => {
    const w = window({
      type: 'recurring',
      cron: '0 22 * * *',
      duration: '4h',
      from: '2026-05-02T00:00:00Z',
      until: '2026-05-05T00:00:00Z',
    });
    expect(within(w, '2026-05-01T00:00:00Z', '2026-05-10T00:00:00Z')).toEqual([
      span('2026-05-02T22:00:00Z', '2026-05-03T02:00:00Z'),
      span('2026-05-03T22:00:00Z', '2026-05-04T02:00:00Z'),
      span('2026-05-04T22:00:00Z', '2026-05-05T02:00:00Z'),
    ]);
    // From 01:00 on the 3rd: the opening of the 2nd evening still covers it; the range's end cuts the last one off.
    expect(within(w, '2026-05-03T01:00:00Z', '2026-05-04T22:00:00Z')).toEqual([
      span('2026-05-02T22:00:00Z', '2026-05-03T02:00:00Z'),
      span('2026-05-03T22:00:00Z', '2026-05-04T02:00:00Z'),
    ]);
    agreesWithOpenWindow(w, '2026-05-01T00:00:00Z', '2026-05-10T00:00:00Z');
  });

  it('openings that overlap or touch are one', () => {
    const w = window({ type: 'recurring', cron: '0 * * * *', duration: '90m' });
    // At 10:00 openWindow has the 10:00 opening (the latest; 09:00's ends sooner): open from there to 13:30.
    expect(within(w, '2026-05-05T10:00:00Z', '2026-05-05T13:00:00Z')).toEqual([
      span('2026-05-05T10:00:00Z', '2026-05-05T13:30:00Z'),
    ]);
    const minutely = window({ type: 'recurring', cron: '* * * * *', duration: '1m' });
    expect(within(minutely, '2026-05-05T10:00:30Z', '2026-05-05T13:00:00Z')).toEqual([
      span('2026-05-05T10:00:00Z', '2026-05-05T13:00:00Z'),
    ]);
  });

  it('walks only the range, however long the window has recurred: a step per opening in it, at most maxSteps', () => {
    // Every minute since long before: three days in the past are 4,320 openings, all of them there.
    const minutely = window({ type: 'recurring', cron: '* * * * *', duration: '1m', timezone: 'Europe/Berlin' });
    const got = openingsWithin(minutely.schedule, at('2026-01-10T00:00:00Z'), at('2026-01-13T00:00:00Z'));
    expect(got).toEqual({
      open: [span('2026-01-10T00:00:00Z', '2026-01-13T00:00:00Z')],
      reached: at('2026-01-13T00:00:00Z'),
      steps: 3 * 1440,
    });
    // Cut off: [from, reached) is decided, and what it found stands.
    const cut = openingsWithin(minutely.schedule, at('2026-01-10T00:00:00Z'), at('2026-01-13T00:00:00Z'), 100);
    expect(cut).toEqual({
      open: [span('2026-01-10T00:00:00Z', '2026-01-10T01:40:00Z')],
      reached: at('2026-01-10T01:40:00Z'),
      steps: 100,
    });
    // Every 5 minutes for a minute: an opening and a jump to the next each.
    const five = window({ type: 'recurring', cron: '*/5 * * * *', duration: '1m' });
    const day = openingsWithin(five.schedule, at('2026-01-10T00:00:00Z'), at('2026-01-11T00:00:00Z'));
    expect(day.open).toHaveLength(288);
    expect(day.steps).toBe(2 * 288);
  });

  it('an opening the clock jumped over (spring forward) opens after the jump, as openWindow has it', () => {
    // 02:30 Europe/Berlin does not exist on 2026-03-29: the window opens at 03:30 CEST (01:30Z).
    const w = window({ type: 'recurring', cron: '30 2 * * *', duration: '1h', timezone: 'Europe/Berlin' });
    expect(within(w, '2026-03-27T12:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      span('2026-03-28T01:30:00Z', '2026-03-28T02:30:00Z'),
      span('2026-03-29T01:30:00Z', '2026-03-29T02:30:00Z'),
      span('2026-03-30T00:30:00Z', '2026-03-30T01:30:00Z'),
    ]);
    expect(openWindow(w.schedule, at('2026-03-29T01:45:00Z'))).not.toBeNull();
    // Passed twice (fall-back): opens at both, as openWindow has it.
    const short = window({ type: 'recurring', cron: '30 2 * * *', duration: '10m', timezone: 'Europe/Berlin' });
    expect(within(short, '2026-10-24T12:00:00Z', '2026-10-25T12:00:00Z')).toEqual([
      span('2026-10-25T00:30:00Z', '2026-10-25T00:40:00Z'),
      span('2026-10-25T01:30:00Z', '2026-10-25T01:40:00Z'),
    ]);
  });

  it('a walk (or nextOpening) from a time between the jump and the jumped-over opening still finds that opening', () => {
    // 02:30 Europe/Berlin does not exist on 2026-03-29: open 03:30–04:30 CEST (01:30Z–02:30Z). From 03:10 CEST (01:10Z)
    // — after the jump, before the opening: a status page's chunk boundary — the next opening is 01:30Z, not the next
    // day's (the walk skipped the night's maintenance).
    const w = window({ type: 'recurring', cron: '30 2 * * *', duration: '1h', timezone: 'Europe/Berlin' });
    expect(nextOpening(w.schedule, at('2026-03-29T01:00:00Z'))).toBe(at('2026-03-29T01:30:00Z'));
    expect(nextOpening(w.schedule, at('2026-03-29T01:10:00Z'))).toBe(at('2026-03-29T01:30:00Z'));
    expect(within(w, '2026-03-29T01:10:00Z', '2026-03-29T03:00:00Z')).toEqual([
      span('2026-03-29T01:30:00Z', '2026-03-29T02:30:00Z'),
    ]);
    // Lord Howe moves its clock by 30 minutes (02:00 +10:30 → 02:30 +11 on 2026-10-04): 02:15 opens at 02:45 (15:45Z).
    const lh = window({ type: 'recurring', cron: '15 2 * * *', duration: '20m', timezone: 'Australia/Lord_Howe' });
    expect(openWindow(lh.schedule, at('2026-10-03T15:50:00Z'))).toEqual(
      span('2026-10-03T15:45:00Z', '2026-10-03T16:05:00Z'),
    );
    expect(nextOpening(lh.schedule, at('2026-10-03T15:35:00Z'))).toBe(at('2026-10-03T15:45:00Z'));
    for (let t = at('2026-03-29T00:50:00Z'); t < at('2026-03-29T01:30:00Z'); t += 60_000)
      expect([new Date(t).toISOString(), nextOpening(w.schedule, t)]).toEqual([
        new Date(t).toISOString(),
        at('2026-03-29T01:30:00Z'),
      ]);
  });

  it('a jumped-over opening is there whatever else the day holds: one on the hour, one beside a later opening', () => {
    // 02:00 Europe/Berlin does not exist on 2026-03-29: openWindow has the window open from 03:00 CEST (01:00Z). The
    // next day's 02:00 CEST is 00:00Z — the end of the UTC day the jump is in — and a second daily opening (12:00) is
    // later that day: neither may stand in for the jumped-over one.
    for (const cron of ['0 2 * * *', '0 2,12 * * *']) {
      const w = window({ type: 'recurring', cron, duration: '2h', timezone: 'Europe/Berlin' });
      expect(openWindow(w.schedule, at('2026-03-29T01:10:00Z'))).toEqual(
        span('2026-03-29T01:00:00Z', '2026-03-29T03:00:00Z'),
      );
      expect(within(w, '2026-03-27T00:00:00Z', '2026-03-31T00:00:00Z')).toContainEqual(
        span('2026-03-29T01:00:00Z', '2026-03-29T03:00:00Z'),
      );
      agreesWithOpenWindow(w, '2026-03-27T00:00:00Z', '2026-03-31T00:00:00Z');
    }
  });

  it.each([
    ['30 2 * * *', '1h'],
    ['*/7 1-3 * * *', '5m'],
    ['0 * * * *', '30m'],
    ['*/5 * * * *', '1m'],
    ['45 1,2 * * 0', '90m'],
  ])(
    '%s for %s agrees with openWindow every 10 minutes around both clock changes (Europe/Berlin)',
    (cron, duration) => {
      const w = window({ type: 'recurring', cron, duration, timezone: 'Europe/Berlin' });
      agreesWithOpenWindow(w, '2026-03-27T00:00:00Z', '2026-03-31T00:00:00Z');
      agreesWithOpenWindow(w, '2026-10-23T00:00:00Z', '2026-10-27T00:00:00Z');
    },
  );

  it('90 days of an hourly window are all there', () => {
    const hourly = window({ type: 'recurring', cron: '0 * * * *', duration: '30m', timezone: 'Europe/Berlin' });
    const got = within(hourly, '2026-01-01T00:00:00Z', '2026-04-01T00:00:00Z');
    expect(got).toHaveLength(90 * 24);
    expect(got[0]).toEqual(span('2026-01-01T00:00:00Z', '2026-01-01T00:30:00Z'));
  });
});

// Where a zone's offset moves by more than MAX_OCCURRENCE_STEPS minutes within a day (Pacific/Apia skipped 2011-12-30:
// −10 → +14), an every-minute window's walk gave up and read as shut (cron-parser's own stepping gave the occurrence).
describe('a walk over a zone that skipped a whole day', () => {
  it('every minute in Pacific/Apia the day before it skipped a day is open', () => {
    const schedule = { type: 'recurring', cron: '* * * * *', timezone: 'Pacific/Apia', duration: '1h' } as const;
    const now = Date.parse('2011-12-29T12:00:00Z');
    expect(openWindow(schedule as never, now)).toEqual({ start: now, end: now + 3_600_000 });
  });
});
