import { HISTORY_MAX_POINTS_PER_LOCATION, TargetKind, TargetStatus } from '@fleetwatch/contracts';
import type { LiveStateStore } from '@fleetwatch/live-state';
import type { HistoryReadRepository, HistoryRollup, TargetStatesRepository } from '@fleetwatch/persistence';
import { CorruptRecords } from '../live/corrupt-records';
import { TargetsService } from './targets.service';

// GET /api/v1/targets/{id}/history past 1,440 minutes: 1-minute rollups merged into steps, "≤ 1440 points a location"
// (docs/api.md). The history fake merges rollups as HistoryReadRepository.rollups does: one rollup per minute that
// ended (and settled) before `now`, at two locations, merged into buckets of `stepMinutes` aligned to the epoch, for
// the buckets starting in [since, until).

const MIN = 60_000;
const SETTLE_MS = 5_000;

function service(): { svc: TargetsService; setNow: (n: number) => void } {
  const live = {
    getTarget: (id: string) =>
      Promise.resolve({ id, kind: TargetKind.Check, name: id, status: TargetStatus.Up, locations: {} }),
  } as unknown as LiveStateStore;
  let nowMs = 0;
  const history = {
    targetExists: () => Promise.resolve(true),
    statusEvents: () => Promise.resolve([]),
    rollups: (w: { since: Date; until: Date }, stepMinutes: number): Promise<HistoryRollup[]> => {
      const step = stepMinutes * MIN;
      const out: HistoryRollup[] = [];
      for (const location of ['eu', 'us']) {
        const buckets = new Map<number, number>();
        for (let m = Math.floor((nowMs - 130_000 * MIN) / MIN) * MIN; m + MIN + SETTLE_MS <= nowMs; m += MIN)
          if (m >= w.since.getTime() && m < w.until.getTime()) {
            const b = Math.floor(m / step) * step;
            buckets.set(b, (buckets.get(b) ?? 0) + 1);
          }
        for (const [at, count] of [...buckets].sort((a, b) => a[0] - b[0]))
          out.push({
            bucket: new Date(at),
            location,
            count,
            okCount: count,
            minLatencyMs: 1,
            avgLatencyMs: 1,
            maxLatencyMs: 1,
            p95LatencyMs: 1,
          } as HistoryRollup);
      }
      return Promise.resolve(out);
    },
  };
  return {
    svc: new TargetsService(
      live,
      history as unknown as HistoryReadRepository,
      {} as TargetStatesRepository,
      new CorruptRecords(),
    ),
    setNow: (n) => (nowMs = n),
  };
}

describe('target history beyond 1,440 minutes', () => {
  const base = Date.UTC(2026, 0, 5, 10, 0, 0);
  // Every phase of the clock against 2- to 7-minute steps, 30 s into the minute (past the settle time).
  const nows = [0, 1, 2, 3, 4, 5, 6].map((m) => base + m * MIN + 30_000);

  it.each([1441, 2160, 2880, 7 * 1440, 90 * 1440])(
    'minutes=%i: at most HISTORY_MAX_POINTS_PER_LOCATION points a location whatever the clock, the newest kept',
    async (minutes) => {
      const { svc, setNow } = service();
      for (const now of nows) {
        setNow(now);
        const res = await svc.historyOf('check:c', { minutes }, now);
        for (const location of ['eu', 'us']) {
          const points = res.points.filter((p) => p.location === location);
          expect({ now: new Date(now).toISOString(), location, n: points.length }).toEqual({
            now: new Date(now).toISOString(),
            location,
            n: Math.min(points.length, HISTORY_MAX_POINTS_PER_LOCATION),
          });
          // Nothing else is lost: the window's whole steps (less the newest, while it has no minute rolled up).
          const step = (res.stepSeconds ?? 60) * 1000;
          const whole = Math.floor((minutes * MIN) / step);
          expect(points.length).toBeGreaterThanOrEqual(Math.min(whole, HISTORY_MAX_POINTS_PER_LOCATION) - 1);
          // The newest step with data is there: what goes is the oldest.
          const newest = Math.floor((now - MIN - SETTLE_MS) / step) * step;
          expect(points.at(-1)?.bucket).toBe(new Date(newest).toISOString());
        }
      }
    },
  );
});
