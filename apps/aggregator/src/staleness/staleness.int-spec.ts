import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetStatus } from '@fleetwatch/contracts';
import { CONTRADICTED_BY_OLDER } from '@fleetwatch/domain';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { TcpProxy, testEnv, waitFor } from '@fleetwatch/testing';
import { AggregatorMetrics } from '../aggregator.metrics';
import {
  count,
  createIsolatedTestSite,
  flushPrefix,
  startAggregator,
  statusUpdate,
  updateRequest,
  type TestSite,
} from '../aggregator.int-helpers';
import { SweeperService } from './sweeper.service';

// Issue 13 item 5: staleness survives Redis. The sweeper takes due deadlines from
// Postgres (target_location_states.deadline_at); Redis's deadline set is only a
// cache of it. Here the site's Redis keys are flushed, or the deadline set is
// deleted over and over, and every target still turns STALE (DOWN for
// heartbeats) on time, once. Only this site's key prefix is ever deleted.

jest.setTimeout(60_000);

const SWEEP_MS = 200;
/** What a tick may add beyond the deadline: one sweep interval, a batch, the test's polling. */
const SLACK_MS = SWEEP_MS + 1000;
const DEADLINES_KEY = 'deadlines';

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;

/** An isolated vhost, database and Redis prefix; the aggregator may reach Redis through another URL (a proxy). */
async function isolatedSite(name: string): Promise<TestSite> {
  return createIsolatedTestSite(name, {
    STALE_AFTER_SECONDS: '5',
    SWEEP_INTERVAL_MS: String(SWEEP_MS),
    AGGREGATOR_BATCH_WAIT_MS: '20',
  });
}

beforeAll(async () => {
  site = await isolatedSite('agg-stale');
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

const member = (targetId: string, location: string) => `${targetId}\u0000${location}`;

/** The durable deadline of one location (epoch ms), or null. */
async function durableDeadline(targetId: string, location: string): Promise<number | null> {
  const { rows } = await site.pg.query<{ at: Date | null }>(
    'SELECT deadline_at AS at FROM target_location_states WHERE target_id = $1 AND location = $2',
    [targetId, location],
  );
  return rows[0]?.at ? rows[0].at.getTime() : null;
}

/** Consensus status events of a target, oldest first. */
async function consensusEvents(targetId: string): Promise<Array<{ to: string; at: number }>> {
  const { rows } = await site.pg.query<{ to_status: string; at: Date }>(
    'SELECT to_status, occurred_at AS at FROM status_events WHERE target_id = $1 AND location IS NULL ORDER BY sequence',
    [targetId],
  );
  return rows.map((r) => ({ to: r.to_status, at: r.at.getTime() }));
}

/** Polls until the target's latest consensus event is `to`; returns when (wall clock) it was first seen. */
async function seenAt(targetId: string, to: TargetStatus): Promise<number> {
  await waitFor(async () => (await consensusEvents(targetId)).at(-1)?.to === to, {
    timeoutMs: 15_000,
    intervalMs: 20,
    description: `${targetId} ${to}`,
  });
  return Date.now();
}

/** Deletes keys of this site's prefix every `everyMs` until stopped (a Redis under eviction pressure, or flushed again and again). */
function keepDeleting(keys: () => Promise<void>, everyMs = 25): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    while (running) {
      await keys();
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}

async function addMonitor(
  targetId: string,
): Promise<(signal: 'success' | 'start', at: number) => ReturnType<typeof publishRequest>> {
  const monitorId = randomUUID();
  await site.pg.query(
    'INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds, max_runtime_seconds) VALUES ($1, $2, $3, $4, 3, 3, NULL)',
    [monitorId, targetId, targetId, randomUUID()],
  );
  return (signal, at) =>
    publishRequest(Messages.PingReceived, {
      monitorId,
      targetId,
      signal,
      receivedAt: new Date(at).toISOString(),
      periodSeconds: 3,
      graceSeconds: 3,
      maxRuntimeSeconds: null,
      name: targetId,
    });
}

const misses = async () => (await AggregatorMetrics.get().deadlineCacheMisses.get()).values[0]?.value ?? 0;

describe('staleness survives Redis', () => {
  it('Redis flushed while targets have deadlines: each pushed instance turns STALE and each heartbeat DOWN on time, once', async () => {
    const ping = await addMonitor('check:hb-flush');
    const start = Date.now();
    const instances = ['flush-1', 'flush-2', 'flush-3'];
    await site.bus.publisher.publishMany([
      ...instances.map((id) => updateRequest(statusUpdate(id, 'running', start))),
      ping('success', start),
    ]);
    const targets = [...instances.map((id) => `instance:${id}`), 'check:hb-flush'];
    // A pushed instance at the ingest's location; a heartbeat monitor at its one location.
    const locationOf = (id: string) => (id.startsWith('check:') ? 'push' : 'ingest-a');
    // Projected, deadlines cached in Redis too.
    await waitFor(
      async () =>
        (await Promise.all(targets.map((id) => store.deadlineOf(id, locationOf(id))))).every((d) => d !== null),
      { description: 'deadlines cached' },
    );
    const heardBy = Date.now();
    const deadlines = new Map<string, number>();
    for (const id of targets) deadlines.set(id, (await durableDeadline(id, locationOf(id))) as number);
    // Period + grace from the ping: from its stamp, or from when the aggregator heard it (a little later).
    expect(deadlines.get('check:hb-flush')).toBeGreaterThanOrEqual(start + 6000);
    expect(deadlines.get('check:hb-flush')).toBeLessThanOrEqual(heardBy + 6000);
    // Still before every deadline (the instances' at start + 5 s), with a second to flush: a loaded box took 3.5 s to
    // get here (the heartbeat's deadline was at 4 s then).
    expect(Date.now()).toBeLessThan(start + 4000);

    // The site's whole live state goes (as on FLUSHALL or a Redis restart without persistence)…
    expect(await flushPrefix(site.redis, site.redisPrefix)).toBeGreaterThan(0);
    // …and the deadline set keeps disappearing after the rebuild refills it.
    const deleter = keepDeleting(async () => void (await site.redis.del(DEADLINES_KEY)));
    try {
      // Polled one query at a time (one pg client); each poll notes when it first saw the transition.
      const seen = new Map<string, number>();
      await waitFor(
        async () => {
          for (const id of targets) {
            if (seen.has(id)) continue;
            const expired = id.startsWith('check:') ? TargetStatus.Down : TargetStatus.Stale;
            if ((await consensusEvents(id)).at(-1)?.to === expired) seen.set(id, Date.now());
          }
          return seen.size === targets.length;
        },
        { timeoutMs: 15_000, intervalMs: 20, description: 'every target expired' },
      );
      for (const id of targets) {
        const due = deadlines.get(id) as number;
        expect(seen.get(id)).toBeGreaterThanOrEqual(due);
        expect((seen.get(id) as number) - due).toBeLessThanOrEqual(SLACK_MS);
      }
    } finally {
      await deleter.stop();
    }

    for (const id of targets) {
      const expired = id.startsWith('check:') ? TargetStatus.Down : TargetStatus.Stale;
      // Exactly one transition, stamped with the deadline; the deadline is gone from Postgres.
      expect((await consensusEvents(id)).filter((e) => e.to === expired)).toEqual([
        { to: expired, at: deadlines.get(id) },
      ]);
      expect(await durableDeadline(id, locationOf(id))).toBeNull();
      // Live state was rebuilt and shows it.
      await waitFor(async () => (await store.getTarget(id))?.status === expired, {
        description: `${id} ${expired} in Redis`,
      });
    }
    const published = await waitFor(
      () => {
        const mine = site.changes.filter(
          (c) => targets.includes(c.targetId) && c.location === null && c.to !== TargetStatus.Up,
        );
        return mine.length >= targets.length ? mine : null;
      },
      { description: 'the transitions published' },
    );
    expect(published).toHaveLength(targets.length);
  });

  it('a deadline missing only from Redis is still swept, on time and once', async () => {
    const start = Date.now();
    await site.bus.publisher.publishMany([
      updateRequest(statusUpdate('only-pg', 'running', start)),
      updateRequest(statusUpdate('with-cache', 'running', start)),
    ]);
    await waitFor(
      async () =>
        (await store.deadlineOf('instance:only-pg', 'ingest-a')) !== null &&
        (await store.deadlineOf('instance:with-cache', 'ingest-a')) !== null,
      {
        description: 'deadlines cached',
      },
    );
    const due = (await durableDeadline('instance:only-pg', 'ingest-a')) as number;
    const missesBefore = await misses();
    // Only this one member goes (a partial loss: the set is not empty, so nothing refills it at once).
    const deleter = keepDeleting(
      async () => void (await site.redis.zrem(DEADLINES_KEY, member('instance:only-pg', 'ingest-a'))),
    );
    try {
      const seen = await seenAt('instance:only-pg', TargetStatus.Stale);
      expect(seen - due).toBeLessThanOrEqual(SLACK_MS);
      expect(seen).toBeGreaterThanOrEqual(due);
    } finally {
      await deleter.stop();
    }
    expect(await misses()).toBeGreaterThan(missesBefore);
    await seenAt('instance:with-cache', TargetStatus.Stale);

    // More sweeps change nothing: one STALE each, and the cache holds no expired deadline.
    const sweeper = app.get(SweeperService);
    for (let i = 0; i < 3; i++) expect(await sweeper.tick()).toBe(true);
    for (const id of ['instance:only-pg', 'instance:with-cache']) {
      expect((await consensusEvents(id)).map((e) => e.to)).toEqual([TargetStatus.Up, TargetStatus.Stale]);
      await waitFor(async () => (await store.deadlineOf(id, 'ingest-a')) === null, {
        description: `${id} settled in the cache`,
      });
    }
    expect(await count(site.pg, "SELECT count(*) AS n FROM status_events WHERE target_id = 'instance:only-pg'")).toBe(
      4,
    );
  });

  it('the deadline set deleted alone is refilled from Postgres at the next sweep', async () => {
    const now = Date.now();
    await site.bus.publisher.publishMany(
      ['refill-1', 'refill-2'].map((id) => updateRequest(statusUpdate(id, 'running', now))),
    );
    await waitFor(async () => (await store.deadlineOf('instance:refill-2', 'ingest-a')) !== null, {
      description: 'deadlines cached',
    });
    const durable = await count(
      site.pg,
      'SELECT count(*) AS n FROM target_location_states WHERE deadline_at IS NOT NULL',
    );
    expect(durable).toBeGreaterThanOrEqual(2);
    expect(await site.redis.del(DEADLINES_KEY)).toBe(1);
    await waitFor(async () => (await store.countDeadlines()) >= durable, {
      timeoutMs: 3000,
      description: 'deadline set refilled',
    });
    const at = await durableDeadline('instance:refill-1', 'ingest-a');
    expect(await store.deadlineOf('instance:refill-1', 'ingest-a')).toBe(at);
    expect((await AggregatorMetrics.get().deadlineCacheRefills.get()).values[0]?.value ?? 0).toBeGreaterThan(0);
  });
});

describe('a pusher whose clock stepped back (its refresh dated before the update it sent last)', () => {
  it('the late-dated refresh keeps the instance reporting: its STALE deadline counts from its receipt, its status stays', async () => {
    const instance = 'push-clock-step';
    const targetId = `instance:${instance}`;
    const first = Date.now();
    await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate(instance, 'running', first));
    await seenAt(targetId, TargetStatus.Up);
    const { rows: located } = await site.pg.query<{ location: string }>(
      'SELECT location FROM target_location_states WHERE target_id = $1',
      [targetId],
    );
    expect(located).toHaveLength(1);
    const location = located[0].location;
    const firstDeadline = (await durableDeadline(targetId, location)) as number;
    expect(firstDeadline).toBeGreaterThanOrEqual(first + 5_000);

    // 3 s on, the refresh: stamped 240 s before the first update (the host clock stepped back), received now.
    await new Promise((r) => setTimeout(r, 3_000));
    const refreshed = Date.now();
    await site.bus.publisher.publish(
      Messages.StatusUpdate,
      statusUpdate(instance, 'running', first - 240_000, { receivedAt: new Date(refreshed).toISOString() }),
    );
    await waitFor(async () => ((await durableDeadline(targetId, location)) ?? 0) >= refreshed + 5_000, {
      timeoutMs: 5_000,
      intervalMs: 20,
      description: "the deadline moved to the refresh's receipt + STALE_AFTER_SECONDS",
    });
    // Past the first update's window: still UP (no STALE in between), its newest state kept.
    await new Promise((r) => setTimeout(r, Math.max(0, firstDeadline + SLACK_MS - Date.now())));
    expect((await consensusEvents(targetId)).map((e) => e.to)).toEqual([TargetStatus.Up]);
    const { rows } = await site.pg.query<{ observed_at: Date; status: string }>(
      'SELECT observed_at, status::text FROM target_location_states WHERE target_id = $1',
      [targetId],
    );
    expect(rows).toEqual([{ observed_at: new Date(first), status: TargetStatus.Up }]);
    // Silent now: STALE one window after the refresh's receipt.
    const staleAt = await seenAt(targetId, TargetStatus.Stale);
    expect(staleAt - refreshed).toBeGreaterThanOrEqual(5_000);
  });
});

describe('a collector whose clock stepped back 10 minutes (an NTP step, a reboot with a slow RTC)', () => {
  it('its host and its check stay UP while samples and results stamped before the last ones keep arriving; STALE once they stop', async () => {
    const STEP_MS = 10 * 60_000;
    const host = 'clock-step-host';
    const check = 'clock-step-check';
    // A host sample without its interval (STALE after STALE_AFTER_SECONDS: 5 s); a check every second (2 × 1 s + 5 s).
    const sample = (at: number) =>
      publishRequest(Messages.HostMetrics, {
        hostId: host,
        location: 'lab-step',
        sampledAt: new Date(at).toISOString(),
        cpu: { usagePct: 5, cores: 2, load1: 0.1, load5: 0.1, load15: 0.1 },
        memory: { totalBytes: 8e9, usedBytes: 1e9 },
        disks: [],
        network: [],
        gpus: [],
        uptimeSeconds: 60,
      });
    const result = (at: number) =>
      publishRequest(Messages.CheckResult, {
        checkId: check,
        targetId: `check:${check}`,
        location: 'lab-step',
        ok: true,
        latencyMs: 3,
        startedAt: new Date(at).toISOString(),
        intervalSeconds: 1,
      });
    const targets = [`host:${host}`, `check:${check}`];
    await site.bus.publisher.publishMany([sample(Date.now()), result(Date.now())]);
    for (const id of targets) await seenAt(id, TargetStatus.Up);

    // The clock steps back: every later sample and result is stamped 10 min before the first ones, for 12 s (more
    // than either window, twice the host's).
    const until = Date.now() + 12_000;
    let last = 0;
    while (Date.now() < until) {
      last = Date.now();
      await site.bus.publisher.publishMany([sample(last - STEP_MS), result(last - STEP_MS)]);
      await new Promise((r) => setTimeout(r, 1000));
    }
    for (const id of targets) {
      expect((await consensusEvents(id)).map((e) => e.to)).toEqual([TargetStatus.Up]);
      expect((await store.getTarget(id))?.status).toBe(TargetStatus.Up);
    }
    // Silent now: STALE one window after the last one heard (not at once, not never).
    const staleAt = await seenAt(`host:${host}`, TargetStatus.Stale);
    expect(staleAt - last).toBeGreaterThanOrEqual(5_000);
    expect(staleAt - last).toBeLessThanOrEqual(5_000 + SLACK_MS + 1000);
    await seenAt(`check:${check}`, TargetStatus.Stale);
  });

  it('a check failing three runs in four is not held UP by the one that passes: STALE one window after the first failure', async () => {
    const STEP_MS = 10 * 60_000;
    const check = 'clock-step-flap';
    const targetId = `check:${check}`;
    const result = (at: number, ok: boolean) =>
      publishRequest(Messages.CheckResult, {
        checkId: check,
        targetId,
        location: 'lab-step',
        ok,
        latencyMs: 3,
        ...(ok ? {} : { failureReason: 'connection refused' }),
        startedAt: new Date(at).toISOString(),
        intervalSeconds: 1,
      });
    await site.bus.publisher.publishMany([result(Date.now(), true)]);
    await seenAt(targetId, TargetStatus.Up);

    // Stamped 10 min back, one every 500 ms: UP, DOWN, DOWN, DOWN, UP… — a passing one every 2 s, well within the
    // check's window (2 × 1 s + 5 s): held UP by them, the location never went STALE while three in four failed.
    let running = true;
    const loop = (async () => {
      for (let i = 0; running; i++) {
        await site.bus.publisher.publishMany([result(Date.now() - STEP_MS, i % 4 === 0)]);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    try {
      await seenAt(targetId, TargetStatus.Stale);
    } finally {
      running = false;
      await loop;
    }
    expect((await consensusEvents(targetId)).map((e) => e.to)).toEqual([TargetStatus.Up, TargetStatus.Stale]);
    const { rows } = await site.pg.query<{ reason: string }>(
      'SELECT reason FROM status_events WHERE target_id = $1 AND location = $2 ORDER BY sequence DESC LIMIT 1',
      [targetId, 'lab-step'],
    );
    expect(rows[0].reason).toBe(`no result within 2 × 1s${CONTRADICTED_BY_OLDER}`);
    expect((await store.getTarget(targetId))?.status).toBe(TargetStatus.Stale);
  });
});

describe('staleness with Redis unreachable', () => {
  /**
   * An aggregator of its own whose Redis traffic alone crosses a proxy (the test reads Redis directly), after one
   * pushed update of `instance` has its deadline cached; `run` gets it with that deadline, and everything is disposed
   * after it. `staleSeen` waits for the instance's consensus STALE on the bus; `staleEvents` counts its STALE events.
   */
  async function withOutageSite(
    name: string,
    instance: string,
    run: (s: {
      other: TestSite;
      proxy: TcpProxy;
      app: INestApplicationContext;
      live: LiveStateStore;
      due: number;
      staleSeen: () => Promise<{ at: string }>;
      staleEvents: () => Promise<number>;
    }) => Promise<void>,
  ): Promise<void> {
    const other = await isolatedSite(name);
    const proxy = TcpProxy.forUrl(testEnv().redisUrl);
    await proxy.start();
    const outageApp = await startAggregator({ ...other.env, REDIS_URL: proxy.rewriteUrl(testEnv().redisUrl) });
    const live = new LiveStateStore(other.redis, { keyPrefix: other.redisPrefix });
    const targetId = `instance:${instance}`;
    try {
      await other.bus.publisher.publish(Messages.StatusUpdate, statusUpdate(instance, 'running', Date.now()));
      await waitFor(async () => (await live.deadlineOf(targetId, 'ingest-a')) !== null, {
        description: 'deadline cached',
      });
      const { rows } = await other.pg.query<{ at: Date }>(
        'SELECT deadline_at AS at FROM target_location_states WHERE target_id = $1',
        [targetId],
      );
      await run({
        other,
        proxy,
        app: outageApp,
        live,
        due: rows[0].at.getTime(),
        staleSeen: () =>
          waitFor(
            () =>
              other.changes.find((c) => c.targetId === targetId && c.location === null && c.to === TargetStatus.Stale),
            { timeoutMs: 15_000, intervalMs: 20, description: 'STALE published with Redis away' },
          ),
        staleEvents: async () => {
          const events = await other.pg.query<{ n: string }>(
            "SELECT count(*) AS n FROM status_events WHERE target_id = $1 AND to_status = 'STALE'",
            [targetId],
          );
          return Number(events.rows[0].n);
        },
      });
    } finally {
      proxy.resume();
      await outageApp.close();
      await proxy.stop();
      await other.dispose();
    }
  }

  it('the sweeper still stores and publishes STALE on time; live state catches up when Redis returns', async () => {
    await withOutageSite('agg-stale-outage', 'outage-1', async ({ proxy, live, due, staleSeen, staleEvents }) => {
      proxy.pause();
      proxy.cut();
      const stale = await staleSeen();
      // A dropped connection is seen at once; a silent one would cost the cache read (0.5 s) and the rebuild probe (1 s).
      expect(Date.now() - due).toBeLessThanOrEqual(SLACK_MS + 1500);
      expect(new Date(stale.at).getTime()).toBe(due);
      expect((await live.getTarget('instance:outage-1'))?.status).toBe(TargetStatus.Up);

      proxy.resume();
      await waitFor(async () => (await live.getTarget('instance:outage-1'))?.status === TargetStatus.Stale, {
        timeoutMs: 15_000,
        description: 'live state STALE after Redis returned',
      });
      await waitFor(async () => (await live.deadlineOf('instance:outage-1', 'ingest-a')) === null, {
        description: 'expired deadline settled in the cache',
      });
      expect(await staleEvents()).toBe(2);
    });
  });

  it('Redis dropping while the sweeper waits for an answer: STALE still stored and published on time', async () => {
    // A command in flight when the connection drops is resent by ioredis once it reconnects: without a command
    // timeout it waited for Redis to return, and so did the sweeper's tick (the deadline cache's count, sent every
    // sweep), and expiry behind it. Here the connection is cut right after that count is sent.
    await withOutageSite(
      'agg-stale-inflight',
      'inflight-1',
      async ({ proxy, app, live, due, staleSeen, staleEvents }) => {
        const store = app.get(LiveStateStore);
        const count = store.countDeadlines.bind(store);
        let cutAt = 0;
        store.countDeadlines = () => {
          const answer = count();
          if (!cutAt) {
            cutAt = Date.now();
            // Sent (ioredis writes at once); the answer never comes back on this connection.
            setImmediate(() => {
              proxy.pause();
              proxy.cut();
            });
          }
          return answer;
        };
        const stale = await staleSeen();
        expect(cutAt).toBeGreaterThan(0);
        expect(cutAt).toBeLessThan(due);
        expect(Date.now() - due).toBeLessThanOrEqual(SLACK_MS + 1500);
        expect(new Date(stale.at).getTime()).toBe(due);
        expect(await staleEvents()).toBe(2);

        proxy.resume();
        await waitFor(async () => (await live.getTarget('instance:inflight-1'))?.status === TargetStatus.Stale, {
          timeoutMs: 15_000,
          description: 'live state STALE after Redis returned',
        });
      },
    );
  });
});
