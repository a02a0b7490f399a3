import { register } from 'prom-client';
import type { Logger } from 'pino';
import { HostConflicts, type ReporterSighting } from './host-conflicts.service';

const I = 5_000;
const T0 = Date.parse('2026-12-07T00:00:00Z');

const logger = { warn: jest.fn(), info: jest.fn() } as unknown as Logger;

async function gauge(): Promise<number> {
  const m = await register.getSingleMetric('fleetwatch_aggregator_host_conflicts')?.get();
  return m?.values[0]?.value ?? NaN;
}

/** Commits of two reporters interleaving on one host, one sample each per interval (each commit heard at its time). */
function interleave(c: HostConflicts, hostId: string, n: number): number {
  let now = T0;
  for (let i = 0; i < n; i++)
    for (const [reporter, offset] of [
      ['a', 0],
      ['b', 2_000],
    ] as const) {
      now = T0 + i * I + offset + 100;
      const s: ReporterSighting = { hostId, reporter, intervalMs: I, sampledAt: T0 + i * I + offset };
      c.fold([s], new Map(), [], now);
    }
  return now;
}

describe('HostConflicts', () => {
  afterEach(() => jest.useRealTimers());

  it('the gauge forgets a marked host gone quiet even when no commit follows (a replica whose shards moved away)', async () => {
    const c = new HostConflicts(logger);
    const last = interleave(c, 'clone-host', 12);
    expect(c.count).toBe(1);
    jest.useFakeTimers({ now: last + I });
    expect(await gauge()).toBe(1);
    // No sample of any host since: the host's collectors stopped, or its shard went to another replica (which counts it
    // there). Well past ten intervals and the sweep period, this replica must not count it any more.
    jest.setSystemTime(last + 30 * I + 61_000);
    expect(await gauge()).toBe(0);
    expect(c.count).toBe(0);
  });

  it('a retired host is forgotten at once: its mark, its count, and the mark on a sample of its next life', () => {
    const c = new HostConflicts(logger);
    const last = interleave(c, 'clone-host', 12);
    expect(c.count).toBe(1);
    c.fold([], new Map(), ['clone-host'], last + 100);
    expect(c.count).toBe(0);
    // The next life's first sample (one collector) is projected without a mark.
    const projected = new Map([['clone-host', { json: '{"cpu":1}', at: last + I }]]);
    c.fold(
      [{ hostId: 'clone-host', reporter: 'a', intervalMs: I, sampledAt: last + I }],
      projected,
      [],
      last + I + 100,
    );
    expect(projected.get('clone-host')?.json).toBe('{"cpu":1}');
  });
});
