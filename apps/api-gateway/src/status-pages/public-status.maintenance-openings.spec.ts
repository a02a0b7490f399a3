import type { AlertConfigRepository, StatusPagesRepository } from '@fleetwatch/persistence';
import { windowIntervals } from '@fleetwatch/alerting';
import { PublicStatusService } from './public-status.service';

// Working out a recurring window's openings over the page's 90 days is the costly part of a build (a window every 5
// minutes in Europe/Berlin: ~0.2 s, all of it on the event loop): only windows covering a target the page draws bars
// for are worth it. Others (another team's tags, another site) are read for whether they are open now, no more.

jest.mock('@fleetwatch/alerting', () => {
  const actual = jest.requireActual<typeof import('@fleetwatch/alerting')>('@fleetwatch/alerting');
  return { ...actual, windowIntervals: jest.fn(actual.windowIntervals) };
});

describe('PublicStatusService: openings only of the windows that matter to the page', () => {
  const now = Date.UTC(2026, 11, 7, 12);
  const recurring = (id: string, scope: Record<string, string[]>) => ({
    id,
    spec: {
      name: id,
      createdBy: 'alice',
      scope,
      schedule: { type: 'recurring', cron: `${id.length % 5}/5 * * * *`, duration: '5m', timezone: 'UTC' },
    },
  });
  const repo = {
    findBySlug: async () => ({
      spec: {
        published: true,
        announcements: [],
        components: [{ name: 'A', description: '', tags: [], targetIds: ['check:a'] }],
      },
    }),
    selectTargets: async () => ({
      sample: [{ targetId: 'check:a', status: 'UP', tags: ['db'] }],
      statuses: ['UP'],
      covered: [],
    }),
    changesSince: async () => ({ initial: new Map([['check:a', 'UP']]), changes: [] }),
  };

  it('windows covering no target of the page are not walked; the one covering its target is, once', async () => {
    const rows = [
      recurring('db', { tags: ['db'] }),
      ...Array.from({ length: 40 }, (_, i) => recurring(`other-${i}`, { tags: [`team-${i}`] })),
      recurring('elsewhere', { sites: ['another-site'] }),
    ];
    const s = new PublicStatusService(
      repo as unknown as StatusPagesRepository,
      { all: async () => rows } as unknown as AlertConfigRepository,
      { cacheMs: 15_000, perAddressPerMinute: 120, site: 'here', now: () => now },
    );
    const page = (await s.view('p')).page;
    expect(page.components[0].state).toBe('operational');
    expect(jest.mocked(windowIntervals).mock.calls.map((c) => c[0])).toEqual([rows[0].spec.schedule]);
  });
});
