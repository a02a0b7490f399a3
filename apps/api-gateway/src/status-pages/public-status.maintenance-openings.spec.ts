import { openingsWithin } from '@fleetwatch/alerting';
import { oneTargetPage, type TargetChange } from './public-status.spec-helpers';

// Working out when a recurring window was open is the costly part of a build (cron-parser: ~0.1 ms an opening, on
// the event loop): only where a target the page draws bars for, and the window covers, was not UP is it worth it.
// Other windows (another team's tags, another site) are read for whether they are open now, no more; a covering window
// over a target UP all along is not walked at all.

jest.mock('@fleetwatch/alerting', () => {
  const actual = jest.requireActual<typeof import('@fleetwatch/alerting')>('@fleetwatch/alerting');
  return { ...actual, openingsWithin: jest.fn(actual.openingsWithin) };
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
  let changes: TargetChange[] = [];
  const service = (rows: unknown[]) =>
    oneTargetPage(
      { status: 'UP', tags: ['db'], statuses: ['UP'], covered: [] },
      () => changes,
      rows,
      () => now,
    );
  const rows = [
    recurring('db', { tags: ['db'] }),
    ...Array.from({ length: 40 }, (_, i) => recurring(`other-${i}`, { tags: [`team-${i}`] })),
    recurring('elsewhere', { sites: ['another-site'] }),
  ];
  beforeEach(() => jest.mocked(openingsWithin).mockClear());

  it('windows covering no target of the page are not walked; the one covering its target is, where it was DOWN', async () => {
    changes = [
      { targetId: 'check:a', at: now - 3 * 3_600_000, to: 'DOWN' },
      { targetId: 'check:a', at: now - 2 * 3_600_000, to: 'UP' },
    ];
    const page = (await service(rows).view('p')).page;
    expect(page.components[0].state).toBe('operational');
    const calls = jest.mocked(openingsWithin).mock.calls;
    expect(new Set(calls.map((c) => c[0]))).toEqual(new Set([rows[0].spec.schedule]));
    // Only the hour it was DOWN: every 5 minutes for 5 minutes, one opening after the other.
    expect(Math.min(...calls.map((c) => c[1]))).toBe(now - 3 * 3_600_000);
    expect(Math.max(...calls.map((c) => c[2]))).toBe(now - 2 * 3_600_000);
    expect(page.incidents).toEqual([]);
  });

  it('a target UP all along: no window is walked', async () => {
    changes = [];
    const page = (await service(rows).view('p')).page;
    expect(page.components[0].days.at(-1)?.state).toBe('operational');
    expect(jest.mocked(openingsWithin)).not.toHaveBeenCalled();
  });
});
