import { HOST_SERIES_MAX_POINTS, TargetKind, TargetStatus } from '@fleetwatch/contracts';
import type { LiveStateStore } from '@fleetwatch/live-state';
import type { BusPublisher } from '@fleetwatch/messaging';
import type { HostHistoryRepository, HostSeries, TargetStatesRepository } from '@fleetwatch/persistence';
import { CorruptRecords } from '../live/corrupt-records';
import { HostsService } from './hosts.service';

// GET /api/v1/hosts/{id}/metrics beyond the raw window: 1-minute rollups merged into steps, "at most 720 points a
// series" (docs/api.md). The history fake groups rollups as HostHistoryRepository.rollupSeries does: one rollup per
// minute that ended (and settled) before `now`, merged into buckets of `stepMinutes` aligned to the epoch, for the
// buckets starting in [since, until).

const MIN = 60_000;
const SETTLE_MS = 5_000;

function service(): HostsService {
  const live = {
    getTarget: (id: string) =>
      Promise.resolve({ id, kind: TargetKind.Host, name: id, status: TargetStatus.Up, locations: {} }),
  } as unknown as LiveStateStore;
  let nowMs = 0;
  const history = {
    hostExists: () => Promise.resolve(true),
    setNow: (n: number) => (nowMs = n),
    rollupSeries: (_id: string, since: number, until: number, stepMinutes: number): Promise<HostSeries[]> => {
      const step = stepMinutes * MIN;
      const buckets = new Map<number, number>();
      // Every minute of the last 90 days and a bit that has a rollup: ended and settled before now.
      for (let m = Math.floor((nowMs - 130_000 * MIN) / MIN) * MIN; m + MIN + SETTLE_MS <= nowMs; m += MIN)
        if (m >= since && m < until) {
          const b = Math.floor(m / step) * step;
          buckets.set(b, (buckets.get(b) ?? 0) + 1);
        }
      const points = [...buckets].sort((a, b) => a[0] - b[0]).map(([at, count]) => ({ at, avg: 1, max: 1, count }));
      return Promise.resolve([{ series: 'cpu_pct', device: '', points }]);
    },
  };
  const svc = new HostsService(
    live,
    history as unknown as HostHistoryRepository,
    {} as BusPublisher,
    {} as TargetStatesRepository,
    new CorruptRecords(),
  );
  const metrics = svc.metrics.bind(svc);
  return Object.assign(svc, {
    metrics: (id: string, q: { minutes: number }, now: number) => {
      history.setNow(now);
      return metrics(id, q, now);
    },
  });
}

describe('host series beyond the raw window', () => {
  const base = Date.UTC(2026, 0, 5, 10, 0, 0);
  // Every phase of the clock against 2- and 3-minute steps, at a few seconds into the minute (past the settle time).
  const nows = [0, 1, 2, 3, 4, 5].map((m) => base + m * MIN + 30_000);

  it.each([721, 1440, 2160, 7 * 1440, 90 * 1440])(
    'minutes=%i: at most HOST_SERIES_MAX_POINTS points a series, whatever the clock',
    async (minutes) => {
      const svc = service();
      for (const now of nows) {
        const res = await svc.metrics('h', { minutes }, now);
        const points = res.series[0]?.points ?? [];
        expect({ now: new Date(now).toISOString(), n: points.length }).toEqual({
          now: new Date(now).toISOString(),
          n: Math.min(points.length, HOST_SERIES_MAX_POINTS),
        });
        // Still the window asked for, less at most the part of one step at its start.
        const first = Date.parse(points[0].at);
        expect(first).toBeLessThanOrEqual(now - minutes * MIN + (res.stepSeconds as number) * 1000);
      }
    },
  );
});

describe('host series beyond the raw window: the cap takes nothing it need not', () => {
  const base = Date.UTC(2026, 0, 5, 10, 0, 0);
  // Phases where the step holding `now` has no minute rolled up yet (2 s, 30 s into a 2-minute step) and where it has.
  const nows = [2_000, 30_000, 90_000, 150_000].map((ms) => base + ms);

  it.each([1439, 1440, 2160, 7 * 1440, 90 * 1440])(
    'minutes=%i: every minute rolled up a series has, HOST_SERIES_MAX_POINTS points, the newest ones',
    async (minutes) => {
      const svc = service();
      for (const now of nows) {
        const res = await svc.metrics('h', { minutes }, now);
        const points = res.series[0].points;
        const step = (res.stepSeconds as number) * 1000;
        const since = now - minutes * MIN;
        // Steps of the window (the one holding its start included) that hold a minute rolled up by now.
        const lastMinute = Math.floor((now - SETTLE_MS) / MIN) * MIN - MIN;
        const stepsWithData = Math.floor(lastMinute / step) - Math.floor(since / step) + 1;
        expect({ now: new Date(now).toISOString(), n: points.length }).toEqual({
          now: new Date(now).toISOString(),
          n: Math.min(stepsWithData, HOST_SERIES_MAX_POINTS),
        });
        expect(Date.parse(points[points.length - 1].at)).toBe(Math.floor(lastMinute / step) * step);
      }
    },
  );
});

describe('GET /api/v1/hosts/{id}: the host-id conflict mark', () => {
  const since = '2026-12-07T07:00:00.000Z';
  const sampleJson = (extra: object = {}) =>
    JSON.stringify({
      hostId: 'h',
      location: 'l',
      sampledAt: since,
      cpu: { usagePct: 1, cores: 1, load1: 0, load5: 0, load15: 0 },
      memory: { totalBytes: 1, usedBytes: 1 },
      disks: [],
      network: [],
      gpus: [],
      ...extra,
    });
  function detailService(liveJson: string | null, rowJson: string | null, markJson: string | null = null) {
    const live = {
      getTarget: (id: string) =>
        Promise.resolve({ id, kind: TargetKind.Host, name: id, status: TargetStatus.Up, locations: {}, since: 0 }),
      getHostMetrics: () => Promise.resolve(liveJson),
      getHostConflictsMany: (ids: string[]) =>
        Promise.resolve(new Map(markJson === null ? [] : ids.map((id) => [id, markJson]))),
    } as unknown as LiveStateStore;
    const history = { latestSample: () => Promise.resolve(rowJson === null ? null : { json: rowJson }) };
    return new HostsService(
      live,
      history as unknown as HostHistoryRepository,
      {} as BusPublisher,
      {} as TargetStatesRepository,
      new CorruptRecords(),
    );
  }
  const mark = (reporters: number) => JSON.stringify({ reporters, since, owner: 'aggregator-1' });

  it('serves the mark of its own key, beside the sample', async () => {
    const detail = await detailService(sampleJson(), null, mark(2)).get('h');
    expect(detail.conflict).toEqual({ reporters: 2, since });
    expect(detail.sample).not.toHaveProperty('conflict');
  });

  it('with a sample read from Postgres too (live state lost the sample, not the mark)', async () => {
    const detail = await detailService(null, sampleJson(), mark(2)).get('h');
    expect(detail.sample?.hostId).toBe('h');
    expect(detail.conflict).toEqual({ reporters: 2, since });
  });

  it('null without one; a mark an aggregator of before left in the sample is neither served nor kept in it', async () => {
    expect((await detailService(sampleJson(), null).get('h')).conflict).toBeNull();
    const old = await detailService(sampleJson({ conflict: { reporters: 2, since } }), null).get('h');
    expect(old.conflict).toBeNull();
    expect(old.sample).not.toHaveProperty('conflict');
    expect(old.sample?.hostId).toBe('h');
  });
});
