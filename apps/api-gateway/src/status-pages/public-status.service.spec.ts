import type { PublicStatusPage } from '@fleetwatch/contracts';
import type { AlertConfigRepository, StatusPagesRepository } from '@fleetwatch/persistence';
import { mergeSpans, newestIncidents, PUBLIC_STATUS_LIMITS, PublicStatusService } from './public-status.service';
import { oneTargetPage, turnsDuring } from './public-status.spec-helpers';
import { RateLimitedError } from '@fleetwatch/domain';

describe('mergeSpans: one component’s incidents from its targets’', () => {
  it.each([
    { name: 'none', spans: [], merged: [] },
    {
      name: 'apart stay apart, oldest first',
      spans: [
        { state: 'outage' as const, start: 50, end: 60 },
        { state: 'degraded' as const, start: 10, end: 20 },
      ],
      merged: [
        { state: 'degraded', start: 10, end: 20 },
        { state: 'outage', start: 50, end: 60 },
      ],
    },
    {
      name: 'overlapping become one, the worse state wins',
      spans: [
        { state: 'degraded' as const, start: 10, end: 30 },
        { state: 'outage' as const, start: 20, end: 40 },
      ],
      merged: [{ state: 'outage', start: 10, end: 40 }],
    },
    {
      name: 'one still going on keeps the merged one open',
      spans: [
        { state: 'outage' as const, start: 10, end: null },
        { state: 'degraded' as const, start: 15, end: 20 },
      ],
      merged: [{ state: 'outage', start: 10, end: null }],
    },
    {
      name: 'touching ends join',
      spans: [
        { state: 'degraded' as const, start: 10, end: 20 },
        { state: 'degraded' as const, start: 20, end: 25 },
      ],
      merged: [{ state: 'degraded', start: 10, end: 25 }],
    },
  ])('$name', ({ spans, merged }) => {
    expect(mergeSpans(spans)).toEqual(merged);
  });
});

describe('newestIncidents: a page lists each component’s newest before one component’s many', () => {
  const at = (h: number) => new Date(Date.UTC(2026, 11, 1, h)).toISOString();
  const inc = (component: string, h: number) => ({
    component,
    state: 'outage' as const,
    startedAt: at(h),
    endedAt: at(h + 1),
  });
  it('a flapping component does not push another’s older incident off the list', () => {
    const sorted = [...Array.from({ length: 60 }, (_, i) => inc('flappy', 100 - i)), inc('steady', 1)];
    const out = newestIncidents(sorted, 50, 10);
    expect(out).toHaveLength(50);
    expect(out.filter((i) => i.component === 'steady')).toHaveLength(1);
    // Newest first, the flapping one's newest kept.
    expect(out[0]).toEqual(inc('flappy', 100));
    expect(out.at(-1)).toEqual(inc('steady', 1));
  });
  it('fewer than the maximum: all of them, newest first', () => {
    const sorted = [inc('a', 5), inc('b', 4), inc('a', 3)];
    expect(newestIncidents(sorted, 50, 1)).toEqual(sorted);
  });
  it('an incident still going on stays on the list however many newer ones ended since', () => {
    // Six components flapping (10 incidents each, newer) and one degraded for weeks, still going on.
    const flapping = Array.from({ length: 60 }, (_, i) => inc(`c${i % 6}`, 200 - i));
    const ongoing = { component: 'slow', state: 'degraded' as const, startedAt: at(1), endedAt: null };
    const out = newestIncidents([...flapping, ongoing], 50, 10);
    expect(out).toHaveLength(50);
    expect(out).toContainEqual(ongoing);
    // Still newest first: the ongoing one, oldest, last.
    expect(out.at(-1)).toEqual(ongoing);
    expect(out[0]).toEqual(inc('c0', 200));
  });
});

const noWindows = { all: async () => [] } as unknown as AlertConfigRepository;

/**
 * A page of one component over one target, `check:a`, UP until `downSince` and DOWN since (UP again over each of
 * `upAgain`), under the maintenance window rows `rows` (the target reads covered by one open now).
 */
const oneDownTarget = (
  downSince: number,
  rows: unknown[],
  clock: { now: number },
  options: { maintenanceStepsPerBuild?: number } = {},
  upAgain: Array<[number, number]> = [],
) =>
  oneTargetPage(
    { status: 'DOWN', tags: [], statuses: [], covered: ['DOWN'] },
    () => [
      { targetId: 'check:a', at: downSince, to: 'DOWN' },
      ...upAgain.flatMap(([a, b]) => [
        { targetId: 'check:a', at: a, to: 'UP' },
        { targetId: 'check:a', at: b, to: 'DOWN' },
      ]),
    ],
    rows,
    () => clock.now,
    options,
  );

describe('PublicStatusService: the public budget and the cache', () => {
  const clock = { t: 1_000_000 };
  const pages = new Set(['public']);
  let finds = 0;
  const repo = {
    findBySlug: async (slug: string) => {
      finds++;
      return pages.has(slug) ? { spec: { published: true, components: [], announcements: [] } } : null;
    },
    selectTargets: async () => ({ sample: [], statuses: [], covered: [] }),
    changesSince: async () => ({ initial: [], changes: [] }),
  };
  const service = () =>
    new PublicStatusService(repo as unknown as StatusPagesRepository, noWindows, {
      cacheMs: 15_000,
      perAddressPerMinute: 120,
      site: 'here',
      now: () => clock.t,
    });
  const admitted = (s: PublicStatusService, addresses: string[]) =>
    addresses.filter((a) => {
      try {
        s.admit(a);
        return true;
      } catch {
        return false;
      }
    }).length;

  it('counts an IPv6 host by its /64 and an IPv4-mapped address as its IPv4 one: rotating addresses gains nothing', () => {
    const s = service();
    const rotating = Array.from({ length: 200 }, (_, i) => `2001:db8::${(i + 1).toString(16)}`);
    expect(admitted(s, rotating)).toBe(120);
    // Another /64 has its own budget.
    expect(admitted(s, ['2001:db8:0:1::1'])).toBe(1);
    const mixed = Array.from({ length: 200 }, (_, i) => (i % 2 ? '10.0.0.1' : '::ffff:10.0.0.1'));
    expect(admitted(s, mixed)).toBe(120);
  });

  it('answers from the cache cost the larger budget: one address (an office behind NAT) reloading a built page is not refused', async () => {
    const s = new PublicStatusService(repo as unknown as StatusPagesRepository, noWindows, {
      cacheMs: 1000,
      perAddressPerMinute: 120,
      site: 'here',
      now: () => clock.t,
    });
    const from = '203.0.113.7';
    s.admit(from, 'public');
    await s.view('public'); // built: answered from the cache for the next second
    // The database budget spent (requests that need a read)…
    expect(
      admitted(
        s,
        Array.from({ length: 200 }, () => from),
      ),
    ).toBe(119);
    // …answers from the cache have their own, larger one.
    let cachedOk = 0;
    for (let i = 0; i < 1300; i++)
      try {
        s.admit(from, 'public');
        cachedOk++;
      } catch {
        break;
      }
    expect(cachedOk).toBe(1200);
    // Past cacheMs the page is built again: those requests cost the database budget (2 tokens back in 1 s).
    clock.t += 1000;
    s.admit(from, 'public');
    s.admit(from, 'public');
    expect(() => s.admit(from, 'public')).toThrow(RateLimitedError);
    expect(() => s.admit('203.0.113.8', 'public')).not.toThrow();
  });

  it('a slug known to name no page is answered from the cache: asked again, it costs the larger budget', async () => {
    const s = service();
    const from = '203.0.113.9';
    s.admit(from, 'gone'); // not known yet: a database read
    await expect(s.view('gone')).rejects.toThrow(/no status page/);
    let cachedOk = 0;
    for (let i = 0; i < 300; i++)
      try {
        s.admit(from, 'gone');
        cachedOk++;
      } catch {
        break;
      }
    expect(cachedOk).toBe(300);
    // The database budget spent only by the first.
    expect(
      admitted(
        s,
        Array.from({ length: 200 }, () => from),
      ),
    ).toBe(119);
  });

  it('answers from the cache are counted per IPv6 /64 too: rotating addresses in one gains nothing', async () => {
    const s = service();
    s.admit('2001:db8:5::1', 'public');
    await s.view('public');
    const rotating = Array.from({ length: 1300 }, (_, i) => `2001:db8:5::${(i + 2).toString(16)}`);
    let cachedOk = 0;
    for (const a of rotating)
      try {
        s.admit(a, 'public');
        cachedOk++;
      } catch {
        // refused
      }
    expect(cachedOk).toBe(1200);
  });

  it('says which announcements are scheduled, ongoing or ended at the time, going-on first', async () => {
    const at = (h: number) => new Date(clock.t + h * 3_600_000).toISOString();
    const announcements = [
      { title: 'done', body: '', severity: 'info', startsAt: at(-5), endsAt: at(-4) },
      { title: 'next week', body: '', severity: 'maintenance', startsAt: at(24 * 7), endsAt: at(24 * 7 + 2) },
      { title: 'now', body: '', severity: 'minor', startsAt: at(-1) },
    ];
    const s = new PublicStatusService(
      {
        ...repo,
        findBySlug: async () => ({ spec: { published: true, components: [], announcements } }),
      } as unknown as StatusPagesRepository,
      noWindows,
      { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now: () => clock.t },
    );
    const { page } = await s.view('announced');
    // Before: the maintenance of next week read "ongoing" from the moment it was written.
    expect(page.announcements.map((a) => [a.title, a.state])).toEqual([
      ['now', 'ongoing'],
      ['next week', 'scheduled'],
      ['done', 'ended'],
    ]);
    expect(page.announcements[1]).toEqual({
      title: 'next week',
      body: '',
      severity: 'maintenance',
      startsAt: at(24 * 7),
      endsAt: at(24 * 7 + 2),
      state: 'scheduled',
    });
  });

  it('an outage whose change is dated ahead of the clock is listed from now, not from the future', async () => {
    const ahead = clock.t + 120_000;
    const s = new PublicStatusService(
      {
        findBySlug: async () => ({
          spec: {
            published: true,
            components: [{ name: 'API', description: '', tags: [], targetIds: ['check:a'] }],
            announcements: [],
          },
        }),
        selectTargets: async () => ({
          sample: [{ targetId: 'check:a', status: 'DOWN', tags: [] }],
          statuses: ['DOWN'],
          covered: [],
        }),
        changesSince: async () => ({
          initial: new Map([['check:a', 'UP']]),
          changes: [{ targetId: 'check:a', at: ahead, to: 'DOWN' }],
        }),
      } as unknown as StatusPagesRepository,
      noWindows,
      { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now: () => clock.t },
    );
    const { page } = await s.view('ahead');
    expect(page.components[0].state).toBe('outage');
    expect(page.incidents).toEqual([{ component: 'API', state: 'outage', startedAt: page.generatedAt, endedAt: null }]);
  });

  it('keeps slugs that name no page apart: a flood of unknown slugs does not push a built page out', async () => {
    const s = service();
    const before = finds;
    await s.view('public');
    const built = finds - before;
    for (let i = 0; i < PUBLIC_STATUS_LIMITS.cachedSlugs + 10; i++)
      await expect(s.view(`nope-${i}`)).rejects.toThrow(/no status page/);
    finds = 0;
    await s.view('public');
    expect(finds).toBe(0);
    // An unknown slug asked again within the cache time is not looked up again; after it, it is.
    const last = `nope-${PUBLIC_STATUS_LIMITS.cachedSlugs + 9}`;
    await expect(s.view(last)).rejects.toThrow(/no status page/);
    expect(finds).toBe(0);
    clock.t += 15_000;
    await expect(s.view(last)).rejects.toThrow(/no status page/);
    expect(finds).toBe(1);
    expect(built).toBe(1);
  });
});

describe('PublicStatusService: planned maintenance on the page', () => {
  const H = 3_600_000;
  const now = Date.UTC(2026, 11, 7, 12);
  const iso = (ms: number) => new Date(ms).toISOString();
  const today = iso(now).slice(0, 10);
  const targets: Record<string, { tags: string[]; status: string }> = {
    'check:a': { tags: ['db'], status: 'UP' },
    'check:b': { tags: ['web'], status: 'UP' },
    'check:c': { tags: ['db'], status: 'DOWN' },
    'check:d': { tags: ['web'], status: 'DOWN' },
  };
  // a and b: DOWN 08:00–10:00 (inside the db window, 07:00–11:00); c: DOWN 09:00–11:30, still DOWN from 11:45.
  const changes = [
    ...['check:a', 'check:b'].flatMap((targetId) => [
      { targetId, at: now - 4 * H, to: 'DOWN' },
      { targetId, at: now - 2 * H, to: 'UP' },
    ]),
    { targetId: 'check:c', at: now - 3 * H, to: 'DOWN' },
    { targetId: 'check:c', at: now - 0.5 * H, to: 'UP' },
    { targetId: 'check:c', at: now - 0.25 * H, to: 'DOWN' },
    { targetId: 'check:d', at: now - 0.25 * H, to: 'DOWN' },
  ];
  const windowRow = (id: string, scope: Record<string, string[]>, startsAt: number, endsAt: number) => ({
    id,
    spec: {
      name: id,
      createdBy: 'alice',
      scope,
      schedule: { type: 'once', startsAt: iso(startsAt), endsAt: iso(endsAt) },
    },
  });
  let asked: unknown[] = [];
  const repo = {
    findBySlug: async () => ({
      spec: {
        published: true,
        announcements: [],
        components: ['a', 'b', 'c', 'd'].map((x) => ({
          name: x.toUpperCase(),
          description: '',
          tags: [],
          targetIds: [`check:${x}`],
        })),
      },
    }),
    selectTargets: async (
      sel: { ids: string[] },
      _limit: number,
      openNow: { targetIds: string[]; tags: string[]; all: boolean },
    ) => {
      asked.push(openNow);
      const sample = sel.ids.map((targetId) => ({ targetId, ...targets[targetId] }));
      const covered = (t: (typeof sample)[number]) =>
        openNow.all || openNow.targetIds.includes(t.targetId) || t.tags.some((x) => openNow.tags.includes(x));
      return {
        sample,
        statuses: sample.filter((t) => !covered(t)).map((t) => t.status),
        covered: sample.filter(covered).map((t) => t.status),
      };
    },
    changesSince: async () => ({ initial: new Map(Object.keys(targets).map((id) => [id, 'UP'])), changes }),
  };
  const view = async (rows: unknown[]) => {
    asked = [];
    const s = new PublicStatusService(
      repo as unknown as StatusPagesRepository,
      { all: async () => rows } as unknown as AlertConfigRepository,
      { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now: () => now },
    );
    return (await s.view('maint')).page;
  };
  const component = (page: PublicStatusPage, name: string) => {
    const found = page.components.find((c) => c.name === name);
    if (!found) throw new Error(`no component ${name}`);
    return found;
  };
  const todayOf = (page: PublicStatusPage, name: string) => component(page, name).days.at(-1);

  it('a DOWN stretch inside a window covering the target (by tag) is maintenance: no incident, uptime unaffected', async () => {
    const page = await view([windowRow('db-work', { tags: ['db'] }, now - 5 * H, now - 1 * H)]);
    expect(todayOf(page, 'A')).toEqual({ date: today, uptime: 1, state: 'maintenance' });
    expect(component(page, 'A').uptime).toBe(1);
    expect(page.incidents.filter((i) => i.component === 'A')).toEqual([]);
    // A window for another tag does nothing to B: its stretch is an outage.
    expect(todayOf(page, 'B')).toEqual({ date: today, uptime: 10 / 12, state: 'outage' });
    expect(page.incidents.filter((i) => i.component === 'B')).toEqual([
      { component: 'B', state: 'outage', startedAt: iso(now - 4 * H), endedAt: iso(now - 2 * H) },
    ]);
  });

  it('a DOWN stretch partly outside the window: the part outside is an outage', async () => {
    const page = await view([windowRow('db-work', { tags: ['db'] }, now - 5 * H, now - 1 * H)]);
    // C: DOWN 09:00–11:30 (11:00–11:30 outside), and again from 11:45.
    expect(page.incidents.filter((i) => i.component === 'C')).toEqual([
      { component: 'C', state: 'outage', startedAt: iso(now - 0.25 * H), endedAt: null },
      { component: 'C', state: 'outage', startedAt: iso(now - 1 * H), endedAt: iso(now - 0.5 * H) },
    ]);
    // Known: 12 h less the 2 h of maintenance; down: 11:00–11:30 and 11:45–12:00.
    expect(todayOf(page, 'C')).toEqual({ date: today, uptime: 9.25 / 10, state: 'outage' });
    expect(component(page, 'C').state).toBe('outage');
  });

  it('windows for other targets or tags, or not yet open, change nothing', async () => {
    const without = await view([]);
    const other = await view([
      windowRow('elsewhere', { tags: ['other'], targetIds: ['check:zz'], sites: ['another-site'] }, now - 5 * H, now),
      windowRow('tomorrow', { tags: ['db', 'web'] }, now + 12 * H, now + 14 * H),
    ]);
    expect(other.components).toEqual(without.components);
    expect(other.incidents).toEqual(without.incidents);
    expect(other.state).toBe('outage');
  });

  it('a window open now: a target under it that is DOWN reads maintenance, and so does the headline', async () => {
    const page = await view([windowRow('d-now', { targetIds: ['check:d'] }, now - 1 * H, now + 1 * H)]);
    expect(asked[0]).toEqual({ targetIds: ['check:d'], tags: [], all: false });
    expect(component(page, 'D').state).toBe('maintenance');
    expect(page.incidents.filter((i) => i.component === 'D')).toEqual([]);
    // C is DOWN outside any window: the page is in an outage; with this site's window over everything, maintenance.
    expect(page.state).toBe('outage');
    const site = await view([windowRow('all', { sites: ['here'] }, now - 1 * H, now + 1 * H)]);
    expect(asked[0]).toEqual({ targetIds: [], tags: [], all: true });
    expect(site.components.map((c) => c.state)).toEqual(['operational', 'operational', 'maintenance', 'maintenance']);
    expect(site.state).toBe('maintenance');
  });
});

describe('PublicStatusService: windows recurring every few minutes (open time walked over the non-UP stretches)', () => {
  // The openings were read back from the end of tomorrow, the newest 2,500 kept: a window opening every minute got
  // only tomorrow's and the rest of today's, so just after midnight nothing in the past was excused — the component
  // read maintenance (openWindow) while its bar said outage and an outage was listed as going on; one every 5 minutes
  // was cut off 8.7 days back. Now a window is walked only where a target it covers was not UP, opening by opening.
  const H = 3_600_000;
  const D = 86_400_000;
  const minutely = (id: string, extra: Record<string, string> = {}) => ({
    id,
    spec: {
      name: id,
      createdBy: 'alice',
      scope: { targetIds: ['check:a'] },
      schedule: { type: 'recurring', cron: '* * * * *', duration: '1m', ...extra } as Record<string, string>,
    },
  });
  const service = oneDownTarget;
  /** The page's days that saw the target DOWN (from `downSince`), and their states. */
  const downDays = (page: PublicStatusPage, downSince: number) =>
    page.components[0].days.filter((d) => Date.parse(d.date) + D > downSince).map((d) => d.state);

  it('a target DOWN for 20 minutes under a window open every minute, just after midnight: all maintenance', async () => {
    const clock = { now: Date.UTC(2026, 11, 7, 0, 30) };
    const page = (await service(clock.now - 20 * 60_000, [minutely('w')], clock).view('p')).page;
    expect(page.components[0].state).toBe('maintenance');
    expect(page.components[0].days.at(-1)?.state).toBe('maintenance');
    expect(page.incidents).toEqual([]);
  });

  it('a target DOWN for three days under a window open every minute: every minute of it excused, in one build', async () => {
    const clock = { now: Date.UTC(2026, 11, 7, 12) };
    const downSince = clock.now - 3 * D;
    const page = (await service(downSince, [minutely('w', { timezone: 'Europe/Berlin' })], clock).view('p')).page;
    expect(downDays(page, downSince)).toEqual(['maintenance', 'maintenance', 'maintenance', 'maintenance']);
    expect(page.components[0].uptime).toBe(1);
    expect(page.incidents).toEqual([]);
  });

  it('every 5 minutes for 5 minutes, DOWN for 30 days (the cap reached 8.7 days back): all of it excused', async () => {
    const clock = { now: Date.UTC(2026, 11, 7, 12) };
    const downSince = clock.now - 30 * D;
    const row = minutely('w');
    row.spec.schedule = { ...row.spec.schedule, cron: '*/5 * * * *', duration: '5m' };
    const page = (await service(downSince, [row], clock).view('p')).page;
    expect(new Set(downDays(page, downSince))).toEqual(new Set(['maintenance']));
    expect(page.incidents).toEqual([]);
  });

  it('more than a build may walk: the newest first, the rest by the next builds (what one decided is not walked again)', async () => {
    // DOWN for three days but for 23:00–24:00 two days ago: 4,260 steps of a minutely window (one a minute); 1,500 a
    // build, the newest first: today's 12 hours (and whether one opens at now: 721), yesterday back to 12:00 (720),
    // then 11:00–11:59 yesterday (59).
    const clock = { now: Date.UTC(2026, 11, 7, 12) };
    const downSince = clock.now - 3 * D;
    const yesterday = Date.UTC(2026, 11, 6);
    const s = service(downSince, [minutely('w')], clock, { maintenanceStepsPerBuild: 1500 }, [
      [yesterday - H, yesterday],
    ]);
    const first = (await s.view('p')).page;
    expect(first.components[0].state).toBe('maintenance');
    expect(downDays(first, downSince)).toEqual(['outage', 'outage', 'outage', 'maintenance']);
    // Not reached: the DOWN time before 11:00 yesterday, and the end of the hour the walk stopped in.
    const outage = (a: number, b: number) => ({
      component: 'A',
      state: 'outage',
      startedAt: new Date(a).toISOString(),
      endedAt: new Date(b).toISOString(),
    });
    expect(first.incidents).toEqual([
      outage(yesterday + 11 * H + 59 * 60_000, yesterday + 12 * H),
      outage(yesterday, yesterday + 11 * H),
      outage(downSince, yesterday - H),
    ]);
    const builds = [first];
    for (let i = 0; i < 2; i++) {
      clock.now += 15_000;
      builds.push((await s.view('p')).page);
    }
    // The second: the rest of yesterday (661 with the new 15 s), then 839 minutes back from 23:00 two days ago. The
    // third: the 1,261 left — none of what the first two decided again (what ended before yesterday included).
    expect(downDays(builds[1], downSince)).toEqual(['outage', 'outage', 'maintenance', 'maintenance']);
    expect(downDays(builds[2], downSince)).toEqual(['maintenance', 'maintenance', 'maintenance', 'maintenance']);
    expect(builds[2].incidents).toEqual([]);
  });

  it('today and yesterday of every target before the older days of any: a target down now is not left to the next build', async () => {
    // `old` DOWN from three days ago to 10:00, `now` DOWN since 11:00 (no time in common: the record of one says nothing
    // of the other), both under a minutely window. 2,200 steps: `old`'s yesterday and today (2,040), `now`'s hour (60),
    // then 100 of `old`'s older minutes. Walking `old` back three days first spent the budget before `now` was reached:
    // its going-on outage was listed while the component read maintenance.
    const clock = { now: Date.UTC(2026, 11, 7, 12) };
    const rows = [
      {
        id: 'w',
        spec: {
          name: 'w',
          createdBy: 'alice',
          scope: { targetIds: ['check:old', 'check:now'] },
          schedule: { type: 'recurring', cron: '* * * * *', duration: '1m' },
        },
      },
    ];
    const s = new PublicStatusService(
      {
        findBySlug: async () => ({
          spec: {
            published: true,
            announcements: [],
            components: ['old', 'now'].map((x) => ({ name: x, description: '', tags: [], targetIds: [`check:${x}`] })),
          },
        }),
        selectTargets: async (sel: { ids: string[] }) => ({
          sample: sel.ids.map((targetId) => ({ targetId, status: targetId === 'check:now' ? 'DOWN' : 'UP', tags: [] })),
          statuses: sel.ids.includes('check:old') ? ['UP'] : [],
          covered: sel.ids.includes('check:now') ? ['DOWN'] : [],
        }),
        changesSince: async () => ({
          initial: new Map([
            ['check:old', 'UP'],
            ['check:now', 'UP'],
          ]),
          changes: [
            { targetId: 'check:old', at: clock.now - 3 * D, to: 'DOWN' },
            { targetId: 'check:old', at: clock.now - 2 * H, to: 'UP' },
            { targetId: 'check:now', at: clock.now - H, to: 'DOWN' },
          ],
        }),
      } as unknown as StatusPagesRepository,
      { all: async () => rows } as unknown as AlertConfigRepository,
      { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now: () => clock.now, maintenanceStepsPerBuild: 2200 },
    );
    const { page } = await s.view('p');
    const now = page.components.find((c) => c.name === 'now');
    expect(now?.state).toBe('maintenance');
    expect(now?.days.at(-1)?.state).toBe('maintenance');
    expect(page.incidents.filter((i) => i.component === 'now')).toEqual([]);
    // `old`: today and yesterday excused, the older days not yet.
    expect(page.components[0].days.slice(-4).map((d) => d.state)).toEqual([
      'outage',
      'outage',
      'maintenance',
      'maintenance',
    ]);
  });

  it.each([
    ['every minute', () => ({ cron: '* * * * *', duration: '1m' }), 'maintenance'],
    [
      'every 5 minutes for 5, five offsets',
      (i: number) => ({ cron: `${i % 5}/5 * * * *`, duration: '5m' }),
      'maintenance',
    ],
    // 200 distinct windows each open a minute in five, all at once: the 4 minutes in 5 no window is open are walked
    // window by window (none finds one there) — the budget ends the build; today is an outage (as it is) either way.
    ['every 5 minutes for 1, all alike', () => ({ cron: '*/5 * * * *', duration: '1m' }), 'outage'],
  ])(
    'a cold build with 200 covering windows %s, DOWN for 3 days: bounded, a slice at a time',
    async (_name, schedule, today) => {
      const clock = { now: Date.UTC(2026, 11, 7, 12) };
      const downSince = clock.now - 3 * D;
      // Distinct `from`s: no two windows share a schedule (nor what is worked out of it).
      const rows = Array.from({ length: 200 }, (_, i) => {
        const row = minutely(`w${i}`);
        row.spec.schedule = {
          ...row.spec.schedule,
          ...schedule(i),
          from: new Date(Date.UTC(2020, 0, 1) + i * 60_000).toISOString(),
        };
        return row;
      });
      const s = service(downSince, rows, clock);
      // The longest stretch the event loop waited while the build ran, and how often it got a turn.
      const started = performance.now();
      const {
        result: { page },
        turns,
        longest,
      } = await turnsDuring(() => s.view('p'));
      const took = performance.now() - started;
      // The numbers (docs/api.md): not a benchmark, a bound on what one build does on the event loop.
      console.info(
        `${_name}: cold build ${Math.round(took)} ms, longest synchronous stretch ${Math.round(longest)} ms`,
      );
      // Not timed (the box is shared): the build gave the event loop turns as it went, not one in the end.
      expect(turns).toBeGreaterThan(5);
      expect(page.components[0].state).toBe('maintenance');
      expect(page.components[0].days.at(-1)?.state).toBe(today);
      if (today === 'maintenance') expect(page.incidents).toEqual([]);
    },
    120_000,
  );
});

describe('PublicStatusService: more schedules than are kept worked out (cachedSchedules)', () => {
  // One more distinct schedule covering a target than the shared record keeps: each build's second pass (the whole
  // page) found the first pass's record of the oldest schedules pushed out by the newest, walked them again, ran out of
  // budget and left the next schedule's open time unexcused — every other build listed an outage inside a window.
  it('what the first pass of a build decided is not lost to the record’s eviction before the second reads it', async () => {
    const H = 3_600_000;
    const slot = 17_000;
    const count = PUBLIC_STATUS_LIMITS.cachedSchedules + 1;
    const clock = { now: Date.UTC(2026, 11, 7, 20) };
    const downFrom = clock.now - 5 * H;
    // Back to back: together they cover downFrom to downFrom + count × 17 s (4 h 43 m 37 s), each a schedule of its own.
    const rows = Array.from({ length: count }, (_, k) => ({
      id: `w${k}`,
      spec: {
        name: `w${k}`,
        createdBy: 'alice',
        scope: { targetIds: ['check:a'] },
        schedule: {
          type: 'once',
          startsAt: new Date(downFrom + k * slot).toISOString(),
          endsAt: new Date(downFrom + (k + 1) * slot).toISOString(),
        },
      },
    }));
    const s = oneDownTarget(downFrom, rows, clock);
    const outage = [
      { component: 'A', state: 'outage', startedAt: new Date(downFrom + count * slot).toISOString(), endedAt: null },
    ];
    for (let build = 0; build < 4; build++) {
      const { page } = await s.view('p');
      expect([build, page.incidents]).toEqual([build, outage]);
      clock.now += 15_000;
    }
  }, 60_000);
});

describe('PublicStatusService: the headline is the worst known state', () => {
  // A component whose targets were all deleted (it selects none: "No data") or one with a STALE target ("not known")
  // made the whole page read "Status not known yet" while every other component was UP: `unknown` ranked above
  // operational and maintenance among components as it does among a component's targets.
  const now = Date.UTC(2026, 11, 7, 12);
  const pageOf = async (components: Record<string, string[]>) => {
    const s = new PublicStatusService(
      {
        findBySlug: async () => ({
          spec: {
            published: true,
            announcements: [],
            components: Object.keys(components).map((name) => ({ name, description: '', tags: [], targetIds: [name] })),
          },
        }),
        selectTargets: async (sel: { ids: string[] }) => {
          const statuses = components[sel.ids[0]];
          return {
            sample: statuses.map((status, j) => ({ targetId: `${sel.ids[0]}-${j}`, status, tags: [] })),
            statuses: [...new Set(statuses)],
            covered: [],
          };
        },
        changesSince: async () => ({ initial: new Map(), changes: [] }),
      } as unknown as StatusPagesRepository,
      noWindows,
      { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now: () => now },
    );
    return (await s.view('p')).page;
  };

  it('a component with no target left, or whose state is not known, does not make the page "unknown"', async () => {
    const page = await pageOf({ up: ['UP'], gone: [], stale: ['STALE', 'UP'], waiting: ['UNKNOWN'] });
    expect(page.components.map((c) => c.state)).toEqual(['operational', 'unknown', 'unknown', 'unknown']);
    expect(page.state).toBe('operational');
    // The hint: two components select targets and their state is not known; `gone` has nothing to know.
    expect(page.unknownComponents).toBe(2);
    expect((await pageOf({ up: ['UP'], gone: [] })).unknownComponents).toBe(0);
  });

  it('the worst known state still heads it; "unknown" only when no component is known', async () => {
    expect((await pageOf({ down: ['DOWN'], stale: ['STALE'] })).state).toBe('outage');
    expect((await pageOf({ paused: ['PAUSED'], stale: ['STALE'], gone: [] })).state).toBe('maintenance');
    expect(await pageOf({ stale: ['STALE'], gone: [] })).toMatchObject({ state: 'unknown', unknownComponents: 1 });
    expect(await pageOf({ gone: [] })).toMatchObject({ state: 'unknown', unknownComponents: 0 });
    expect(await pageOf({})).toMatchObject({ state: 'unknown', unknownComponents: 0 });
  });
});
