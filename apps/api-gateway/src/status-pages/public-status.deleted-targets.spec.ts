import { STATUS_PAGE_LIMITS, type PublicStatusPage } from '@fleetwatch/contracts';
import type { AlertConfigRepository, StatusPagesRepository } from '@fleetwatch/persistence';
import { PublicStatusService } from './public-status.service';

// Targets deleted within the page's days are in a component's sample after its live ones (selectTargets
// `historySince`): pushed instances (pods) come and go all the time, so a tag-selected component fills its 200 with
// dead pods. They must not take what the live targets need: their share of the events read (maxEvents ÷ the page's
// targets — 1 live + 199 dead pods in three components cut a live target to 83 changes, and a flapping target's older
// outage left the bars and incidents) nor the maintenance walk's budget (dead pods' DOWN stretches walked before
// another component's live target: its maintenance read as an outage).

const H = 3_600_000;
const D = 86_400_000;
const now = Date.UTC(2026, 11, 7, 12);
const today = Date.UTC(2026, 11, 7);
type Change = { targetId: string; at: number; to: string };
type Target = { targetId: string; status: string; tags: string[]; deleted?: boolean };

/**
 * A page whose components are `components` (each: its sample, live ones first), over a repository that reads each
 * target's newest `perTarget` changes as StatusPagesRepository.changesSince does (one cut short has no status at the
 * window's start: its earlier days are no data).
 */
function pageOf(components: Target[][], changes: Change[], rows: unknown[] = [], maintenanceStepsPerBuild?: number) {
  const reads: Array<{ ids: string[]; perTarget: number; read: number }> = [];
  const repo = {
    findBySlug: async () => ({
      spec: {
        slug: 'p',
        title: 'p',
        description: '',
        published: true,
        announcements: [],
        components: components.map((_, i) => ({ name: `C${i}`, description: '', tags: [`c${i}`], targetIds: [] })),
      },
    }),
    selectTargets: async (sel: { tags: string[] }) => {
      const sample = components[Number(sel.tags[0].slice(1))];
      const live = sample.filter((t) => !t.deleted);
      return { sample, statuses: [...new Set(live.map((t) => t.status))], covered: [] };
    },
    changesSince: async (ids: string[], _from: number, perTarget: number) => {
      const initial = new Map<string, string>();
      const out: Change[] = [];
      for (const id of ids) {
        const own = changes.filter((c) => c.targetId === id);
        // The checks were UP before the window; a pod's life starts in it (no status before its first change).
        if (own.length <= perTarget && id.startsWith('check:')) initial.set(id, 'UP');
        out.push(...own.slice(-perTarget));
      }
      reads.push({ ids, perTarget, read: out.length });
      return { initial, changes: out };
    },
  };
  const service = new PublicStatusService(
    repo as unknown as StatusPagesRepository,
    { all: async () => rows } as unknown as AlertConfigRepository,
    { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now: () => now, maintenanceStepsPerBuild },
  );
  return { view: async (): Promise<PublicStatusPage> => (await service.view('p')).page, reads };
}

/** Component `c`: its live target `check:c<c>` (UP now) and `dead` pods deleted within the page's days. */
const component = (c: number, dead: number): Target[] => [
  { targetId: `check:c${c}`, status: 'UP', tags: [`c${c}`] },
  ...Array.from({ length: dead }, (_, k) => ({
    targetId: `instance:c${c}-pod${String(k).padStart(3, '0')}`,
    status: 'UNKNOWN',
    tags: [`c${c}`],
    deleted: true,
  })),
];
/** A pod's life: UP from 01:00, removed (UNKNOWN) at 06:00 `daysAgo` days back — DOWN its last 10 minutes if `down`. */
const podLife = (targetId: string, daysAgo: number, down = false): Change[] => {
  const at = today - daysAgo * D + 6 * H;
  return [
    { targetId, at: at - 5 * H, to: 'UP' },
    ...(down ? [{ targetId, at: at - 10 * 60_000, to: 'DOWN' }] : []),
    { targetId, at, to: 'UNKNOWN' },
  ];
};
const iso = (ms: number) => new Date(ms).toISOString();

describe('PublicStatusService: deleted targets take nothing the live ones need', () => {
  it('the events read: a live target keeps its share however many deleted pods the page draws', async () => {
    // check:c0 DOWN 06:00–08:00 80 days back, then flapping UP ↔ STALE (100 changes) the last two days.
    const outageAt = today - 80 * D + 6 * H;
    const flapping = Array.from({ length: 100 }, (_, k) => ({
      targetId: 'check:c0',
      at: now - 2 * D + k * 20 * 60_000,
      to: k % 2 === 0 ? 'STALE' : 'UP',
    }));
    const live: Change[] = [
      { targetId: 'check:c0', at: outageAt, to: 'DOWN' },
      { targetId: 'check:c0', at: outageAt + 2 * H, to: 'UP' },
      ...flapping,
    ];
    const components = [0, 1, 2].map((c) => component(c, STATUS_PAGE_LIMITS.targetsPerComponent - 1));
    // Every dead pod lived and went at some point in the last 60 days; C1's first went DOWN before it went.
    const dead = components.flatMap((ts, c) =>
      ts.filter((t) => t.deleted).map((t, k) => podLife(t.targetId, 1 + (k % 60), c === 1 && k === 0)),
    );
    const { view, reads } = pageOf(components, [...live, ...dead.flat()]);
    const page = await view();
    const bar = page.components[0].days[STATUS_PAGE_LIMITS.days - 1 - 80];
    expect(bar).toEqual({ date: iso(today - 80 * D).slice(0, 10), uptime: 22 / 24, state: 'outage' });
    expect(page.incidents).toContainEqual({
      component: 'C0',
      state: 'outage',
      startedAt: iso(outageAt),
      endedAt: iso(outageAt + 2 * H),
    });
    // The dead pods' history is still read, from what the live targets leave of the budget.
    expect(page.incidents).toContainEqual({
      component: 'C1',
      state: 'outage',
      startedAt: iso(today - D + 6 * H - 10 * 60_000),
      endedAt: iso(today - D + 6 * H),
    });
    expect(page.components[2].days.slice(-61, -1).every((d) => d.uptime === 1)).toBe(true);
    // The deleted ones get what the live ones left: the page reads no more than before (maxEvents, 50,000).
    expect(reads).toHaveLength(2);
    expect(reads[1].ids.length * reads[1].perTarget).toBeLessThanOrEqual(50_000 - reads[0].read);
  });

  it('the maintenance walk: live targets of every component before any deleted one', async () => {
    // A window open all the time, one opening a minute, over every target here. C0's dead pods were DOWN an hour each
    // (60 steps), days 10–29 back; C1's live target DOWN 06:00–07:00 five days back. The budget: 60 steps for each
    // of the two days first walked, and 300 more — C1's hour, or five of C0's pods.
    const minutely = { type: 'recurring', cron: '* * * * *', duration: '1m', timezone: 'UTC' };
    const rows = [{ id: 'w', spec: { name: 'w', createdBy: 'alice', scope: { sites: ['here'] }, schedule: minutely } }];
    const c0 = component(0, 20);
    const c1 = component(1, 0);
    const changes: Change[] = [
      ...c0
        .filter((t) => t.deleted)
        .flatMap((t, k) => {
          const at = today - (10 + k) * D + 6 * H;
          return [
            { targetId: t.targetId, at, to: 'DOWN' },
            { targetId: t.targetId, at: at + H, to: 'UNKNOWN' },
          ];
        }),
      { targetId: 'check:c1', at: today - 5 * D + 6 * H, to: 'DOWN' },
      { targetId: 'check:c1', at: today - 5 * D + 7 * H, to: 'UP' },
    ];
    const page = await pageOf([c0, c1], changes, rows, 300).view();
    expect(page.components[1].days[STATUS_PAGE_LIMITS.days - 1 - 5].state).toBe('maintenance');
    expect(page.incidents.filter((i) => i.component === 'C1')).toEqual([]);
  });
});
