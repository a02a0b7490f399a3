import { openingsWithin } from '@fleetwatch/alerting';
import type { PublicStatusPage } from '@fleetwatch/contracts';
import type { AlertConfigRepository, StatusPagesRepository } from '@fleetwatch/persistence';
import { PUBLIC_STATUS_LIMITS, PublicStatusService } from './public-status.service';

// The per-schedule record of open time worked out (shared by every page, at most cachedSchedules of them) was read at
// the start of a schedule's walk — what it had walked was not walked again — and read anew after the walk's yields to
// build the answer. Another build in between showed through: one pushing the record out (more than cachedSchedules
// schedules on another page) left only what this walk found, and one from after UTC midnight had rewritten it without
// the day before its own first. Either way time the first read excused (so not walked) read as an outage for a cache
// period. A build now works from each record as it first read it, plus what it walked itself.

jest.mock('@fleetwatch/alerting', () => {
  const actual = jest.requireActual<typeof import('@fleetwatch/alerting')>('@fleetwatch/alerting');
  return { ...actual, openingsWithin: jest.fn(actual.openingsWithin) };
});
const realOpeningsWithin =
  jest.requireActual<typeof import('@fleetwatch/alerting')>('@fleetwatch/alerting').openingsWithin;

const H = 3_600_000;
const D = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
type Change = { targetId: string; at: number; to: string };

const minutely = { type: 'recurring', cron: '* * * * *', duration: '1m', timezone: 'UTC' };
/** The window over `check:a`: open all the time, one opening (one step of the walk) a minute. */
const windowOverA = {
  id: 'a',
  spec: { name: 'a', createdBy: 'alice', scope: { targetIds: ['check:a'] }, schedule: minutely },
};

/**
 * Two published pages on one service: `p` (component A: `check:a`) and `q` (component B: `check:b`), both targets UP
 * at the window's start, then `changes`. `gates`: a build waits on `gates.windows` before its windows are read, and a
 * build of `q` on `gates.q` before its changes are.
 */
function twoPages(
  rows: unknown[],
  changes: Change[],
  clock: { now: number },
  gates: { windows?: Promise<void>; q?: Promise<void> } = {},
  maintenanceStepsPerBuild?: number,
) {
  const repo = {
    findBySlug: async (slug: string) => ({
      spec: {
        slug,
        title: slug,
        description: '',
        published: true,
        announcements: [],
        components: [
          {
            name: slug === 'p' ? 'A' : 'B',
            description: '',
            tags: [],
            targetIds: [`check:${slug === 'p' ? 'a' : 'b'}`],
          },
        ],
      },
    }),
    selectTargets: async (sel: { ids: string[] }) => ({
      sample: sel.ids.map((targetId) => ({ targetId, status: 'DOWN', tags: [] })),
      statuses: [],
      covered: ['DOWN'],
    }),
    changesSince: async (ids: string[]) => {
      if (ids.includes('check:b')) await gates.q;
      return {
        initial: new Map(ids.map((id) => [id, 'UP'])),
        changes: changes.filter((c) => ids.includes(c.targetId)),
      };
    },
  };
  const windows = {
    all: async () => {
      const gate = gates.windows;
      gates.windows = undefined;
      await gate;
      return rows;
    },
  };
  return new PublicStatusService(
    repo as unknown as StatusPagesRepository,
    windows as unknown as AlertConfigRepository,
    {
      cacheMs: 15_000,
      perAddressPerMinute: 120,
      site: 'here',
      now: () => clock.now,
      sliceMs: Infinity,
      maintenanceStepsPerBuild,
    },
  );
}

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};
const turns = async (n: number) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};
const outagesOf = (page: PublicStatusPage) => page.incidents.map((i) => [i.startedAt, i.endedAt]);

afterEach(() => jest.mocked(openingsWithin).mockImplementation(realOpeningsWithin));

describe('PublicStatusService: a build works from the schedule records as it first read them', () => {
  it('pushed out of the record by another page’s build of more than cachedSchedules schedules mid-walk: nothing it had excused is lost', async () => {
    // `check:a` DOWN from 09:00 on Dec 3 on, under a window open all the time. The first build (12:00 that day) walks
    // 09:00–12:00 (W). The second (Dec 7, 23:30) walks today and yesterday first (2,850 minutes: ~28 yields), then older
    // days newest first until its 5,000 steps are spent — short of W, which the record says is excused. Meanwhile page
    // q's build walks its 1,001 windows and pushes the window over `check:a` out of the record.
    const t1 = Date.UTC(2026, 11, 3, 12);
    const t2 = Date.UTC(2026, 11, 7, 23, 30);
    const count = PUBLIC_STATUS_LIMITS.cachedSchedules + 1;
    const qWindows = Array.from({ length: count }, (_, k) => ({
      id: `q${k}`,
      spec: {
        name: `q${k}`,
        createdBy: 'alice',
        scope: { targetIds: ['check:b'] },
        // Distinct schedules, long over: each walked over b's outage in one step, none excusing it.
        schedule: {
          type: 'once',
          startsAt: iso(Date.UTC(2026, 0, 1) + k * 60_000),
          endsAt: iso(Date.UTC(2026, 0, 1) + k * 60_000 + 30_000),
        },
      },
    }));
    const rows = [windowOverA, ...qWindows];
    const changes = [
      { targetId: 'check:a', at: t1 - 3 * H, to: 'DOWN' },
      { targetId: 'check:b', at: t2 - 10 * 60_000, to: 'DOWN' },
    ];
    const secondBuild = async (withQ: boolean) => {
      const clock = { now: t1 };
      const q = deferred();
      const s = twoPages(rows, changes, clock, { q: q.promise }, 5000);
      await s.view('p');
      clock.now = t2;
      // q's build reads its windows, then waits for its changes until p's second build is walking a's window.
      const qBuild = withQ ? s.view('q') : undefined;
      await turns(40);
      let walking = false;
      jest.mocked(openingsWithin).mockImplementation((schedule, ...rest) => {
        if (!walking && schedule.type === 'recurring') {
          walking = true;
          q.resolve();
        }
        return realOpeningsWithin(schedule, ...rest);
      });
      let pDone = false;
      const pBuild = s.view('p').then((r) => ((pDone = true), r));
      if (qBuild) {
        await qBuild;
        // q's build (its 1,001 records written) was over before p's had read a's record again.
        expect(pDone).toBe(false);
      }
      return (await pBuild).page;
    };
    const undisturbed = await secondBuild(false);
    // Not reached by the budget: from the first build's last opening (12:00–12:01) to Dec 4 12:00, and the end of the
    // hour the walk stopped in. W (09:00–12:00 on Dec 3) excused.
    expect(outagesOf(undisturbed)).toEqual([
      [expect.stringMatching(/^2026-12-04T12:/), '2026-12-04T13:00:00.000Z'],
      [iso(t1 + 60_000), '2026-12-04T12:00:00.000Z'],
    ]);
    const disturbed = await secondBuild(true);
    expect(disturbed).toEqual(undisturbed);
  }, 60_000);

  /**
   * The two builds from either side of UTC midnight below: a first at `before`, the old one at `old`, the newer one at
   * `newer` (its page's first day, `first`, a day after the old page's); `check:a`'s `changes`: DOWN from 4 hours
   * before `first` to 4 hours into it, DOWN again from 23:00 on Dec 7.
   */
  const aroundMidnight = () => {
    const before = Date.UTC(2026, 11, 7, 23, 59);
    const old = before + 50_000;
    const newer = Date.UTC(2026, 11, 8, 0, 0, 10);
    const first = Date.UTC(2026, 11, 8) - 89 * D;
    const changes = [
      { targetId: 'check:a', at: first - 4 * H, to: 'DOWN' },
      { targetId: 'check:a', at: first + 4 * H, to: 'UP' },
      { targetId: 'check:a', at: Date.UTC(2026, 11, 7, 23), to: 'DOWN' },
    ];
    return { before, old, newer, first, changes };
  };

  it('rewritten by a build from after UTC midnight before it read it: the day before the newer page’s first is still excused', async () => {
    // The old build's page starts a day before the newer's (`first`). `check:a` was DOWN from 4 hours before the newer
    // page's first day to 4 hours into it, under one window before that midnight and another after, and is DOWN again
    // from 23:00 (no window). The first window's record: walked across the midnight (its walk took the whole outage),
    // its opening ending there. The newer build rewrote it without that opening (it ended before the newer page's
    // first day) but still walked across it: the old build read that time as walked and never open.
    const { before, old, newer, first, changes } = aroundMidnight();
    const once = (id: string, startsAt: number, endsAt: number) => ({
      id,
      spec: {
        name: id,
        createdBy: 'alice',
        scope: { targetIds: ['check:a'] },
        schedule: { type: 'once', startsAt: iso(startsAt), endsAt: iso(endsAt) },
      },
    });
    const rows = [once('before', first - 4 * H, first), once('after', first, first + 4 * H)];
    const oldBuild = async (withNewer: boolean) => {
      const clock = { now: before };
      const gates: { windows?: Promise<void> } = {};
      const s = twoPages(rows, changes, clock, gates);
      await s.view('p');
      // The old build waits for its windows while the newer one (15 s past the cache period) is built whole.
      const release = deferred();
      gates.windows = release.promise;
      clock.now = old;
      const oldView = s.view('p');
      if (withNewer) {
        clock.now = newer;
        const n = (await s.view('p')).page;
        expect(n.components[0].days[0].date).toBe(iso(first).slice(0, 10));
      }
      release.resolve();
      return (await oldView).page;
    };
    const undisturbed = await oldBuild(false);
    expect(undisturbed.components[0].days[0].state).toBe('maintenance');
    expect(outagesOf(undisturbed)).toEqual([[iso(Date.UTC(2026, 11, 7, 23)), null]]);
    const disturbed = await oldBuild(true);
    expect(disturbed).toEqual(undisturbed);
  });

  it('rewritten by a build from after UTC midnight while it walked: what it had read as excused stays so', async () => {
    // As above, but the first build's budget leaves the oldest two hours unwalked: the old build walks them (100 steps
    // and more: it yields), and the newer build is built whole meanwhile.
    const { before, old, newer, first, changes } = aroundMidnight();
    const oldBuild = async (withNewer: boolean) => {
      const clock = { now: before };
      // 60 steps today, then the newest 6 of the 8 hours around the newer page's first midnight.
      const s = twoPages([windowOverA], changes, clock, {}, 60 + 6 * 60 + 1);
      await s.view('p');
      clock.now = old;
      let newerBuild: Promise<unknown> | undefined;
      jest.mocked(openingsWithin).mockImplementation((schedule, from, ...rest) => {
        if (withNewer && !newerBuild && from < first - 2 * H + 1) {
          clock.now = newer;
          newerBuild = s.view('p');
        }
        return realOpeningsWithin(schedule, from, ...rest);
      });
      const oldView = s.view('p');
      const page = (await oldView).page;
      if (withNewer) expect(newerBuild).toBeDefined();
      await newerBuild;
      return page;
    };
    const undisturbed = await oldBuild(false);
    expect(undisturbed.components[0].days[0].state).toBe('maintenance');
    expect(undisturbed.incidents).toEqual([]);
    const disturbed = await oldBuild(true);
    expect(disturbed).toEqual(undisturbed);
  });
});

describe('PublicStatusService: two builds writing one schedule’s record at once', () => {
  it('keeps what both walked: neither page walks again what the other build decided meanwhile', async () => {
    // One window (open all the time, one opening a minute) over `check:a` (page p) and `check:b` (page q). a was DOWN
    // 09:00–12:00 on Dec 3, b 09:00–12:00 on Dec 4: the two builds walk 180 minutes each, yielding every 100 steps —
    // both read the record before either wrote it. Written back as each build's own view, the second write dropped
    // the first's walk (the next build of that page walked it again: budget spent twice, an outage where it ran out).
    const both = {
      id: 'ab',
      spec: { name: 'ab', createdBy: 'alice', scope: { targetIds: ['check:a', 'check:b'] }, schedule: minutely },
    };
    const changes = [
      { targetId: 'check:a', at: Date.UTC(2026, 11, 3, 9), to: 'DOWN' },
      { targetId: 'check:a', at: Date.UTC(2026, 11, 3, 12), to: 'UP' },
      { targetId: 'check:b', at: Date.UTC(2026, 11, 4, 9), to: 'DOWN' },
      { targetId: 'check:b', at: Date.UTC(2026, 11, 4, 12), to: 'UP' },
    ];
    const clock = { now: Date.UTC(2026, 11, 7, 12) };
    const s = twoPages([both], changes, clock);
    const [p, q] = await Promise.all([s.view('p'), s.view('q')]);
    for (const { page } of [p, q]) {
      expect(page.incidents).toEqual([]);
      expect(page.components[0].days.some((d) => d.state === 'maintenance')).toBe(true);
    }
    jest.mocked(openingsWithin).mockClear();
    clock.now += 20_000;
    const [p2, q2] = await Promise.all([s.view('p'), s.view('q')]);
    expect(jest.mocked(openingsWithin)).not.toHaveBeenCalled();
    expect([p2.page.components, q2.page.components]).toEqual([p.page.components, q.page.components]);
  });
});
