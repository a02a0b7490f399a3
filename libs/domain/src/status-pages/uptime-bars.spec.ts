import { TargetStatus as S } from '@fleetwatch/contracts';
import {
  dailyTotals,
  DAY_MS,
  dayStateOf,
  incidentsOf,
  inEffect,
  maintenanceStretches,
  mergeDays,
  mergeIntervals,
  outsideMaintenance,
  publicStateOf,
  uptimeOf,
  windowUptime,
  worstState,
  type StatusChange,
} from './uptime-bars';

const H = 3_600_000;
const D0 = Date.UTC(2026, 10, 1); // 2026-11-01T00:00Z
const at = (day: number, hours = 0) => D0 + day * DAY_MS + hours * H;

/** Three days, day 0 … day 2, `now` at the end of day 2 unless a case says otherwise. */
function bars(initial: S | null, changes: StatusChange[], now = at(3) - 1) {
  return dailyTotals({ days: 3, now, initial, changes });
}

describe('dailyTotals: days from status events', () => {
  it.each([
    {
      name: 'no events and nothing before: every day has no data (not 100 %)',
      initial: null,
      changes: [],
      uptime: [null, null, null],
      states: ['unknown', 'unknown', 'unknown'],
    },
    {
      name: 'UP since before the window: every day fully up',
      initial: S.Up,
      changes: [],
      uptime: [1, 1, 1],
      states: ['operational', 'operational', 'operational'],
    },
    {
      name: 'first seen UP at noon of day 1: day 0 no data, day 1 up for the half it knows',
      initial: null,
      changes: [{ at: at(1, 12), to: S.Up }],
      uptime: [null, 1, 1],
      states: ['unknown', 'operational', 'operational'],
    },
    {
      name: 'DOWN for 6 h on day 1',
      initial: S.Up,
      changes: [
        { at: at(1, 6), to: S.Down },
        { at: at(1, 12), to: S.Up },
      ],
      uptime: [1, 0.75, 1],
      states: ['operational', 'outage', 'operational'],
    },
    {
      name: 'an outage across midnight counts in both days',
      initial: S.Up,
      changes: [
        { at: at(0, 18), to: S.Down },
        { at: at(1, 6), to: S.Up },
      ],
      uptime: [0.75, 0.75, 1],
      states: ['outage', 'outage', 'operational'],
    },
    {
      name: 'PARTIAL counts as up but marks the day degraded',
      initial: S.Up,
      changes: [
        { at: at(2, 0), to: S.Partial },
        { at: at(2, 12), to: S.Up },
      ],
      uptime: [1, 1, 1],
      states: ['operational', 'operational', 'degraded'],
    },
    {
      name: 'STALE is no data: a day half UP half STALE is 100 % of what is known',
      initial: S.Up,
      changes: [{ at: at(1, 12), to: S.Stale }],
      uptime: [1, 1, null],
      states: ['operational', 'operational', 'unknown'],
    },
    {
      name: 'PAUSED all day: maintenance, no uptime',
      initial: S.Paused,
      changes: [],
      uptime: [null, null, null],
      states: ['maintenance', 'maintenance', 'maintenance'],
    },
    {
      name: 'changes before the window set the starting status',
      initial: S.Up,
      changes: [{ at: at(-5), to: S.Down }],
      uptime: [0, 0, 0],
      states: ['outage', 'outage', 'outage'],
    },
  ])('$name', ({ initial, changes, uptime, states }) => {
    const days = bars(initial, changes);
    expect(days.map((d) => d.start)).toEqual([at(0), at(1), at(2)]);
    expect(days.map(uptimeOf)).toEqual(uptime);
    expect(days.map(dayStateOf)).toEqual(states);
  });

  it('stops at now: the rest of today is not counted', () => {
    const days = bars(S.Up, [{ at: at(2, 6), to: S.Down }], at(2, 12));
    expect(days[2]).toMatchObject({ upMs: 6 * H, downMs: 6 * H });
    expect(uptimeOf(days[2])).toBe(0.5);
  });

  it('ignores changes after now', () => {
    const days = bars(S.Up, [{ at: at(2, 13), to: S.Down }], at(2, 12));
    expect(days[2]).toMatchObject({ upMs: 12 * H, downMs: 0 });
  });

  it('a day with no data and a day fully UP differ', () => {
    const days = bars(null, [{ at: at(1), to: S.Up }]);
    expect(uptimeOf(days[0])).toBeNull();
    expect(uptimeOf(days[1])).toBe(1);
  });

  it('mergeDays adds targets: one down half a day, one up all day → 75 %', () => {
    const a = bars(S.Up, [{ at: at(0, 12), to: S.Down }]);
    const b = bars(S.Up, []);
    const merged = mergeDays([a, b]);
    expect(uptimeOf(merged[0])).toBe(0.75);
    expect(windowUptime(merged)).toBeCloseTo((0.5 * DAY_MS + 3 * DAY_MS) / (6 * DAY_MS - 2), 6);
    expect(mergeDays([])).toEqual([]);
  });
});

describe('worstState', () => {
  it.each([
    [[], 'unknown'],
    [['operational', 'degraded'], 'degraded'],
    [['operational', 'outage', 'degraded'], 'outage'],
    [['operational', 'maintenance'], 'maintenance'],
    [['operational', 'unknown'], 'unknown'],
  ] as const)('%j → %s', (states, worst) => {
    expect(worstState(states)).toBe(worst);
  });
});

describe('incidentsOf', () => {
  it('each DOWN or PARTIAL stretch, ended by the next change; an open one has no end', () => {
    const changes = [
      { at: at(0, 1), to: S.Down },
      { at: at(0, 2), to: S.Partial },
      { at: at(0, 3), to: S.Up },
      { at: at(1, 1), to: S.Down },
      { at: at(1, 2), to: S.Down },
    ];
    expect(incidentsOf(S.Up, changes, at(0))).toEqual([
      { state: 'outage', start: at(0, 1), end: at(0, 2) },
      { state: 'degraded', start: at(0, 2), end: at(0, 3) },
      { state: 'outage', start: at(1, 1), end: null },
    ]);
  });

  it('a change dated after now (a clock ahead: ingest takes minutes of skew) is in force now, not later', () => {
    // The target is DOWN now (its live status says so), its change dated 2 minutes ahead of the page's clock: the
    // page listed an outage that "started" in 2 minutes, and one UP dated ahead ended an outage in the future.
    const now = at(1, 12);
    const ahead = now + 120_000;
    expect(incidentsOf(S.Up, [{ at: ahead, to: S.Down }], at(0), now)).toEqual([
      { state: 'outage', start: now, end: null },
    ]);
    expect(
      incidentsOf(
        S.Up,
        [
          { at: at(1, 11), to: S.Down },
          { at: ahead, to: S.Up },
        ],
        at(0),
        now,
      ),
    ).toEqual([{ state: 'outage', start: at(1, 11), end: now }]);
    // Both ahead: in force now, for no time yet — no incident of its own.
    expect(
      incidentsOf(
        S.Up,
        [
          { at: ahead, to: S.Down },
          { at: ahead + 1000, to: S.Up },
        ],
        at(0),
        now,
      ),
    ).toEqual([]);
  });

  it('an incident going on at the window start starts there', () => {
    expect(incidentsOf(S.Down, [{ at: at(0, 5), to: S.Stale }], at(0))).toEqual([
      { state: 'outage', start: at(0), end: at(0, 5) },
    ]);
  });
});

describe('changes in sequence order whose times go back (consensus events stored before their times were kept in order)', () => {
  // Two locations UP; eu DOWN at +100 s, us DOWN at +90 s (a slow probe started earlier, folded later), eu UP at
  // +110 s, us UP at +105 s: the target ends UP. Stored as dated by their causes, in sequence order:
  const S0 = at(2, 10);
  const changes = [
    { at: S0 + 100_000, to: S.Partial },
    { at: S0 + 90_000, to: S.Down },
    { at: S0 + 110_000, to: S.Partial },
    { at: S0 + 105_000, to: S.Up },
  ];

  it('the last change in sequence is the status in force: no open incident for a target UP', () => {
    const spans = incidentsOf(S.Up, changes, at(0));
    expect(spans.every((s) => s.end !== null)).toBe(true);
    // The stretches that lasted no time (PARTIAL and DOWN in one instant) are no incidents of their own.
    expect(spans).toEqual([{ state: 'outage', start: S0 + 100_000, end: S0 + 110_000 }]);
  });

  it('uptime counts each stretch once, and UP after the last change', () => {
    const days = bars(S.Up, changes, at(2, 12));
    expect(days[2]).toMatchObject({ upMs: 12 * 3_600_000 - 10_000, downMs: 10_000, degradedMs: 0 });
  });

  it('inEffect dates each change at its own time or the one before it, whichever is later', () => {
    expect(inEffect(changes).map((c) => [c.at - S0, c.to])).toEqual([
      [100_000, S.Partial],
      [100_000, S.Down],
      [110_000, S.Partial],
      [110_000, S.Up],
    ]);
  });
});

describe('planned maintenance: time a window covers', () => {
  const inWindow = (initial: S | null, changes: StatusChange[], maintenance: { start: number; end: number }[]) =>
    dailyTotals({ days: 3, now: at(3) - 1, initial, changes, maintenance: mergeIntervals(maintenance) });

  it('a DOWN stretch inside a window is maintenance: the day says so and its uptime is that of the rest', () => {
    const changes = [
      { at: at(1, 6), to: S.Down },
      { at: at(1, 8), to: S.Up },
    ];
    const days = inWindow(S.Up, changes, [{ start: at(1, 5), end: at(1, 9) }]);
    expect(days[1]).toMatchObject({ upMs: 22 * H, downMs: 0, maintenanceMs: 2 * H });
    expect(days.map(dayStateOf)).toEqual(['operational', 'maintenance', 'operational']);
    expect(days.map(uptimeOf)).toEqual([1, 1, 1]);
    expect(windowUptime(days)).toBe(1);
    // Without the window: an outage of 2 h.
    expect(dayStateOf(bars(S.Up, changes)[1])).toBe('outage');
  });

  it('a DOWN stretch partly outside: the part outside is an outage', () => {
    const days = inWindow(
      S.Up,
      [
        { at: at(1, 6), to: S.Down },
        { at: at(1, 10), to: S.Up },
      ],
      [{ start: at(1, 5), end: at(1, 7) }],
    );
    expect(days[1]).toMatchObject({ downMs: 3 * H, maintenanceMs: 1 * H, upMs: 20 * H });
    expect(dayStateOf(days[1])).toBe('outage');
    expect(uptimeOf(days[1])).toBe(20 / 23);
  });

  it('PARTIAL and STALE inside a window are maintenance too; UP stays up, PAUSED stays paused', () => {
    const days = inWindow(
      S.Up,
      [
        { at: at(0, 1), to: S.Partial },
        { at: at(0, 2), to: S.Stale },
        { at: at(0, 3), to: S.Paused },
        { at: at(0, 4), to: S.Up },
      ],
      [{ start: at(0), end: at(0, 5) }],
    );
    expect(days[0]).toMatchObject({ upMs: 21 * H, degradedMs: 0, downMs: 0, pausedMs: H, maintenanceMs: 2 * H });
    expect(dayStateOf(days[0])).toBe('maintenance');
  });

  it('a window across midnight and two targets merged: each day keeps its part', () => {
    const a = inWindow(S.Down, [], [{ start: at(0, 22), end: at(1, 2) }]);
    const merged = mergeDays([a, bars(S.Up, [])]);
    expect(merged.map((d) => d.maintenanceMs)).toEqual([2 * H, 2 * H, 0]);
    expect(merged.map((d) => d.downMs)).toEqual([22 * H, 22 * H, 24 * H - 1]);
  });

  it('mergeIntervals sorts and joins overlapping and touching ones, drops empty ones', () => {
    expect(
      mergeIntervals([
        { start: 50, end: 60 },
        { start: 10, end: 20 },
        { start: 20, end: 30 },
        { start: 25, end: 28 },
        { start: 40, end: 40 },
      ]),
    ).toEqual([
      { start: 10, end: 30 },
      { start: 50, end: 60 },
    ]);
  });

  it('a current status under an open window: DOWN, PARTIAL and STALE read maintenance, UP stays operational', () => {
    expect([S.Down, S.Partial, S.Stale, S.Up, S.Unknown].map((s) => publicStateOf(s, true))).toEqual([
      'maintenance',
      'maintenance',
      'maintenance',
      'operational',
      'unknown',
    ]);
    expect(publicStateOf(S.Down)).toBe('outage');
  });
});

describe('outsideMaintenance: incidents less the windows', () => {
  const w = (start: number, end: number) => ({ start, end });
  it.each([
    {
      name: 'inside a window: no incident',
      spans: [{ state: 'outage' as const, start: at(1, 6), end: at(1, 8) }],
      windows: [w(at(1, 5), at(1, 9))],
      out: [],
    },
    {
      name: 'begun before, ended after a window: the two parts outside',
      spans: [{ state: 'outage' as const, start: at(1, 4), end: at(1, 10) }],
      windows: [w(at(1, 5), at(1, 9))],
      out: [
        { state: 'outage', start: at(1, 4), end: at(1, 5) },
        { state: 'outage', start: at(1, 9), end: at(1, 10) },
      ],
    },
    {
      name: 'still going on past a window that closed: open from the window’s end',
      spans: [{ state: 'degraded' as const, start: at(1, 6), end: null }],
      windows: [w(at(1, 5), at(1, 9))],
      out: [{ state: 'degraded', start: at(1, 9), end: null }],
    },
    {
      name: 'still going on inside a window open now: none',
      spans: [{ state: 'outage' as const, start: at(1, 6), end: null }],
      windows: [w(at(1, 5), at(3))],
      out: [],
    },
    {
      name: 'windows elsewhere change nothing',
      spans: [{ state: 'outage' as const, start: at(1, 6), end: at(1, 8) }],
      windows: [w(at(0, 1), at(0, 2)), w(at(1, 8), at(1, 9))],
      out: [{ state: 'outage', start: at(1, 6), end: at(1, 8) }],
    },
    {
      // incidentsOf dates a change made now, or dated ahead of the clock, at now: it lasted no time yet.
      name: 'begun this very instant, a window elsewhere: still listed, open',
      spans: [{ state: 'outage' as const, start: at(2, 12), end: null }],
      windows: [w(at(0, 1), at(0, 2))],
      out: [{ state: 'outage', start: at(2, 12), end: null }],
    },
    {
      // [start, end): closed at now, as openWindow has it — the target reads its own state again.
      name: 'still going on as a window closes this very instant: open from now',
      spans: [{ state: 'outage' as const, start: at(2, 6), end: null }],
      windows: [w(at(2, 5), at(2, 12))],
      out: [{ state: 'outage', start: at(2, 12), end: null }],
    },
    {
      name: 'still going on, the next opening later (openings are known ahead): open from its start',
      spans: [{ state: 'outage' as const, start: at(2, 6), end: null }],
      windows: [w(at(2, 14), at(2, 16))],
      out: [{ state: 'outage', start: at(2, 6), end: null }],
    },
    {
      name: 'still going on, a window opening this very instant: ends now',
      spans: [{ state: 'outage' as const, start: at(2, 6), end: null }],
      windows: [w(at(2, 12), at(2, 16))],
      out: [{ state: 'outage', start: at(2, 6), end: at(2, 12) }],
    },
  ])('$name', ({ spans, windows, out }) => {
    expect(outsideMaintenance(spans, windows, at(2, 12))).toEqual(out);
  });
});

describe('maintenanceStretches: the time a maintenance window could excuse', () => {
  it('DOWN, PARTIAL and STALE time from the window start to now, joined; one going on reaches just past now', () => {
    const changes: StatusChange[] = [
      { at: at(-1), to: S.Down }, // before the window: the status it starts with
      { at: at(0, 2), to: S.Up },
      { at: at(0, 5), to: S.Partial },
      { at: at(0, 6), to: S.Stale },
      { at: at(0, 7), to: S.Paused },
      { at: at(1, 1), to: S.Down },
      { at: at(1, 3), to: S.Unknown },
      { at: at(2, 4), to: S.Down },
    ];
    expect(maintenanceStretches(null, changes, at(0), at(2, 12))).toEqual([
      { start: at(0), end: at(0, 2) },
      { start: at(0, 5), end: at(0, 7) },
      { start: at(1, 1), end: at(1, 3) },
      { start: at(2, 4), end: at(2, 12) + 1 },
    ]);
  });

  it('read as incidentsOf reads them: a change dated after now counts at now, one dated back at its predecessor', () => {
    expect(maintenanceStretches(S.Up, [{ at: at(2, 13), to: S.Down }], at(0), at(2, 12))).toEqual([
      { start: at(2, 12), end: at(2, 12) + 1 },
    ]);
    expect(
      maintenanceStretches(
        S.Up,
        [
          { at: at(1, 2), to: S.Down },
          { at: at(1, 1), to: S.Up },
        ],
        at(0),
        at(2, 12),
      ),
    ).toEqual([]);
    expect(maintenanceStretches(S.Down, [], at(0), at(2, 12))).toEqual([{ start: at(0), end: at(2, 12) + 1 }]);
  });
});
