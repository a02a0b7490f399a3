import { UnavailableError } from '@fleetwatch/domain';
import type { LiveStateStore } from '@fleetwatch/live-state';
import { createLogger } from '@fleetwatch/observability';
import { SerialLane } from '../status/serial-lane';
import type { LiveProjection } from './live-projection.service';
import { LiveStateBoot } from './live-state.boot';
import { ProjectionQueue } from './projection.queue';

// A CI run's staleness spec ("the sweeper still stores and publishes STALE on time with Redis away") waited 15 s for a
// STALE that came only once Redis was back. The sweeper's rebuild job probes Redis, then checks live state in an
// exclusive lane job that first waits for queued projections; when Redis went away between the probe and that wait, a
// projection retrying through the outage held the job, and every shard's expiry queued behind it, until Redis
// returned. A projection waiting out an outage now fails the check (the next tick tries again) instead.

const logger = createLogger('test', 'silent');

/** What a Redis client says while the server is away (ioredis, once its retries per request are spent). */
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { syscall: 'connect' });

/** Redis as the projection queue sees it: away (every projection fails, transiently) or back. */
class Redis {
  away = false;
  async project(): Promise<void> {
    if (this.away) throw refused();
  }
}

/** Every test's Redis comes back after it (pass or fail), so no projection goes on retrying in Jest's process. */
const opened: Redis[] = [];
afterEach(() => {
  for (const r of opened.splice(0)) r.away = false;
});

async function setup() {
  const redis = new Redis();
  opened.push(redis);
  const lane = new SerialLane();
  const projections = new ProjectionQueue(logger);
  /** What live state looks like to isBehind (Redis flushed: true); every rebuild, with whether projections had landed. */
  const state = { behind: false, rebuilds: [] as string[] };
  const live = {
    isBehind: async () => state.behind,
    isMissingTargets: async () => false,
    rebuild: async () => {
      state.rebuilds.push('rebuild');
      state.behind = false;
      return 0;
    },
  } as unknown as LiveProjection;
  const store = { connected: true, ping: async () => 'PONG' } as unknown as LiveStateStore;
  const boot = new LiveStateBoot(live, lane, projections, store, logger);
  // Booted: live state found whole (the boot's own check), as on a running aggregator.
  await boot.onModuleInit();
  return { redis, lane, projections, boot, state };
}

/** Resolves with how a promise settled, or 'pending' if it has not within `ms`. */
async function settledWithin<T>(p: Promise<T>, ms: number): Promise<'resolved' | 'pending' | Error> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<'pending'>((r) => (timer = setTimeout(() => r('pending'), ms)));
  try {
    return await Promise.race([
      p.then(
        () => 'resolved' as const,
        (e: Error) => e,
      ),
      pending,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe('LiveStateBoot.check with a projection waiting out a Redis outage', () => {
  it('fails the check at once instead of holding every lane until Redis returns', async () => {
    const { redis, lane, projections, boot, state } = await setup();
    state.behind = true;
    redis.away = true;
    projections.enqueue(() => redis.project());
    // Let the projection fail once (it then waits out the outage with backoff).
    await new Promise((r) => setTimeout(r, 20));

    const check = boot.check();
    // A shard's expiry queued behind the check (as the sweeper's expireHeld is, behind the rebuild job).
    const expiry = lane.runIn(3, async () => 'expired');
    const outcome = await settledWithin(check, 1000);
    expect(outcome).toBeInstanceOf(UnavailableError);
    expect((outcome as Error).message).toMatch(/waiting for Redis/);
    expect(await settledWithin(expiry, 1000)).toBe('resolved');
    expect(state.rebuilds).toEqual([]);

    // Redis back: the projection lands, and the next check rebuilds.
    redis.away = false;
    await projections.drain();
    await expect(boot.check()).resolves.toBe(true);
    expect(state.rebuilds).toEqual(['rebuild']);
    await projections.beforeApplicationShutdown();
  });

  it('a check already waiting for a projection gives up when that projection meets the outage', async () => {
    const { redis, lane, projections, boot, state } = await setup();
    state.behind = true;
    // The projection is in flight when Redis goes: it fails only after the check began waiting for it.
    let fail!: () => void;
    const inFlight = new Promise<void>((_, reject) => (fail = () => reject(refused())));
    let first = true;
    projections.enqueue(async () => {
      if (first) {
        first = false;
        await inFlight;
      }
      await redis.project();
    });
    const check = boot.check();
    const expiry = lane.runIn(0, async () => 'expired');
    expect(await settledWithin(check, 100)).toBe('pending');
    redis.away = true;
    fail();
    expect(await settledWithin(check, 1000)).toBeInstanceOf(UnavailableError);
    expect(await settledWithin(expiry, 1000)).toBe('resolved');
    redis.away = false;
    await projections.drain();
    await projections.beforeApplicationShutdown();
  });

  it('waits for projections that are only slow (no outage), so a rebuild never rewrites under them', async () => {
    const { projections, boot, state } = await setup();
    state.behind = true;
    let landed = false;
    projections.enqueue(async () => {
      await new Promise((r) => setTimeout(r, 300));
      landed = true;
      state.rebuilds.push(`projected`);
    });
    await expect(boot.check()).resolves.toBe(true);
    expect(landed).toBe(true);
    expect(state.rebuilds).toEqual(['projected', 'rebuild']);
  });

  it('a check that finds nothing behind does not take the lanes (a shard lane busy, Redis slow)', async () => {
    const { lane, boot, state } = await setup();
    let release!: () => void;
    const busy = lane.runIn(5, () => new Promise<void>((r) => (release = r)));
    try {
      // On the old code the check queued behind the busy lane (an exclusive job), and every shard behind the check.
      expect(await settledWithin(boot.check(), 500)).toBe('resolved');
      expect(
        await settledWithin(
          lane.runIn(2, async () => 'committed'),
          500,
        ),
      ).toBe('resolved');
      expect(state.rebuilds).toEqual([]);
    } finally {
      release();
      await busy;
    }
  });
});

describe('ProjectionQueue.drainUnlessOutage', () => {
  it('resolves once drained; rejects while a projection retries; resolves again once one succeeded', async () => {
    const redis = new Redis();
    opened.push(redis);
    const projections = new ProjectionQueue(logger);
    await expect(projections.drainUnlessOutage()).resolves.toBeUndefined();

    redis.away = true;
    projections.enqueue(() => redis.project());
    await expect(projections.drainUnlessOutage()).rejects.toBeInstanceOf(UnavailableError);
    // Already in the outage: at once.
    expect(await settledWithin(projections.drainUnlessOutage(), 10)).toBeInstanceOf(UnavailableError);

    redis.away = false;
    await projections.drain();
    await expect(projections.drainUnlessOutage()).resolves.toBeUndefined();
    // drain() itself still waits an outage out (hand-over order relies on it).
    redis.away = true;
    projections.enqueue(() => redis.project());
    const drained = projections.drain();
    expect(await settledWithin(drained, 300)).toBe('pending');
    redis.away = false;
    expect(await settledWithin(drained, 6000)).toBe('resolved');
  });
});
