import type { FlowMetrics, FlowPoint } from '@fleetwatch/contracts';
import { mergeFlow } from './fleet-poller';

const point = (minute: number, count: number): FlowPoint => ({
  at: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
  ingress: { count, bytes: null },
  egress: { count, bytes: null },
  stored: { count, bytes: null },
  deleted: { count: null, bytes: null },
});
const flow = (points: FlowPoint[]): FlowMetrics => ({
  site: 's',
  minutes: points.length,
  stepSeconds: 60,
  points,
  sources: {},
});
const counts = (f: FlowMetrics) => f.points.map((p) => p.ingress.count);

describe('mergeFlow', () => {
  it.each([
    ['nothing held', undefined, [point(5, 1)], 60, [1]],
    [
      'appends new minutes, the newer answer winning a shared minute',
      [point(1, 1), point(2, 2)],
      [point(2, 9), point(3, 3)],
      60,
      [1, 9, 3],
    ],
    ['keeps the window', [point(1, 1), point(2, 2), point(3, 3)], [point(4, 4)], 3, [2, 3, 4]],
    ['orders by time whatever the order received', [point(3, 3)], [point(1, 1), point(2, 2)], 60, [1, 2, 3]],
  ])('%s', (_n, held, fresh, window, expected) => {
    const merged = mergeFlow(held ? flow(held) : undefined, flow(fresh), window);
    expect(counts(merged)).toEqual(expected);
    expect(merged.minutes).toBe(window);
  });
});
