import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetStatus, uuidv7 } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { AdvisoryLease, closeSqlPool, createSqlPool, TargetStatesRepository } from '@fleetwatch/persistence';
import { TcpProxy, waitFor } from '@fleetwatch/testing';
import { AggregatorMetrics } from './aggregator.metrics';
import { SWEEPER_LEASE_NAME } from './aggregator.module';
import { HistoryMaintenance } from './history/history-maintenance.service';
import { SweeperService } from './staleness/sweeper.service';
import {
  count,
  createIsolatedTestSite,
  flushPrefix,
  startAggregator,
  statusUpdate,
  updateRequest,
  type TestSite,
} from './aggregator.int-helpers';

// Issue 10, aggregator: published observations → Redis live state, Postgres history,
// ordered status events published as status.changed; staleness, heartbeats,
// rebuild after a Redis flush, consensus and its quorum. The aggregator runs in
// this process on an isolated vhost, database and Redis prefix.

jest.setTimeout(60_000);

const SWEEP_MS = 200;
let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;
/** DATABASE_LOCK_URL goes through this proxy (DATABASE_URL does not): the lock sessions' own way to Postgres. */
let lockProxy: TcpProxy;
const lockEnv = () => ({ DATABASE_LOCK_URL: lockProxy.rewriteUrl(site.env.DATABASE_URL) });

beforeAll(async () => {
  site = await createIsolatedTestSite('agg-main', {
    STALE_AFTER_SECONDS: '5',
    SWEEP_INTERVAL_MS: String(SWEEP_MS),
    AGGREGATOR_ROLLUP_INTERVAL_MS: '300',
    AGGREGATOR_BATCH_WAIT_MS: '20',
  });
  lockProxy = TcpProxy.forUrl(site.env.DATABASE_URL);
  await lockProxy.start();
  app = await startAggregator({ ...site.env, ...lockEnv() });
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await lockProxy?.stop();
  await site?.dispose();
});

const events = async (targetId: string) =>
  (
    await site.pg.query<{
      sequence: string;
      location: string | null;
      from_status: string;
      to_status: string;
      reason: string;
    }>(
      'SELECT sequence, location, from_status, to_status, reason FROM status_events WHERE target_id = $1 ORDER BY sequence',
      [targetId],
    )
  ).rows.map((r) => ({ ...r, sequence: Number(r.sequence) }));

const liveStatus = async (id: string) => (await store.getTarget(id))?.status;
const t0 = Date.now() - 60_000;

describe('aggregator: status updates → live state, history, events', () => {
  it('folds published status updates into Redis and Postgres, with ordered events published as status.changed', async () => {
    await site.bus.publisher.publishMany([
      updateRequest(statusUpdate('web-1', 'running', t0, { labels: { team: 'core', env: 'prod' } })),
      updateRequest(statusUpdate('web-1', 'exited', t0 + 1000, { message: 'OOMKilled' })),
      updateRequest(statusUpdate('web-1', 'running', t0 + 2000)),
      updateRequest(statusUpdate('db-1', 'running', t0, { location: 'dc-2' })),
      // Nothing follows this one: it turns STALE later (STALE_AFTER_SECONDS=5).
      updateRequest(statusUpdate('stale-1', 'running', Date.now())),
    ]);
    await waitFor(async () => (await count(site.pg, 'SELECT count(*) AS n FROM status_updates')) === 5, {
      description: '5 status_updates rows',
    });

    const web = await waitFor(
      async () => {
        const t = await store.getTarget('instance:web-1');
        return t && t.seq === 6 ? t : null;
      },
      { description: 'instance:web-1 in Redis with 6 events' },
    );
    expect(web).toMatchObject({
      kind: 'instance',
      name: 'web-1',
      status: TargetStatus.Up,
      lifecycle: 'running',
      tags: ['env=prod', 'team=core'],
      labels: { team: 'core', env: 'prod' },
    });
    // No location in the update: the source's location (status-ingest's) is used.
    expect(Object.keys(web.locations)).toEqual(['ingest-a']);
    expect((await store.getTarget('instance:db-1'))?.locations['dc-2']).toMatchObject({
      status: TargetStatus.Up,
      lifecycle: 'running',
    });
    expect((await store.listTargets({ tag: 'team=core' }, 10)).items.map((t) => t.id)).toEqual(['instance:web-1']);

    const stored = await events('instance:web-1');
    expect(stored.map((e) => [e.sequence, e.location, e.from_status, e.to_status])).toEqual([
      [1, 'ingest-a', 'UNKNOWN', 'UP'],
      [2, null, 'UNKNOWN', 'UP'],
      [3, 'ingest-a', 'UP', 'DOWN'],
      [4, null, 'UP', 'DOWN'],
      [5, 'ingest-a', 'DOWN', 'UP'],
      [6, null, 'DOWN', 'UP'],
    ]);
    expect(stored[2].reason).toBe('exited: OOMKilled');

    const published = await waitFor(
      () => {
        const mine = site.changes.filter((c) => c.targetId === 'instance:web-1');
        return mine.length >= 6 ? mine : null;
      },
      { description: '6 status.changed for web-1' },
    );
    expect(published.map((c) => c.sequence)).toEqual([1, 2, 3, 4, 5, 6]);
    // A commit's events travel together: status.changed.batch messages only, fewer than the events.
    expect(Object.keys(site.changeMessages)).toEqual(['status.changed.batch']);
    expect(site.changeMessages['status.changed.batch']).toBeLessThan(site.changes.length);
    expect(published[3]).toMatchObject({
      kind: 'instance',
      location: null,
      from: 'UP',
      to: 'DOWN',
      at: new Date(t0 + 1000).toISOString(),
    });
    await waitFor(() => site.fanOut.filter((c) => c.targetId === 'instance:web-1').length === 6, {
      description: 'live fan-out of web-1 events',
    });
    // The relay empties the outbox once every event is confirmed — db-1's events may still be on their way when
    // web-1's are all seen (the relay works in batches), so wait for it rather than sample it.
    await waitFor(async () => (await count(site.pg, 'SELECT count(*) AS n FROM status_event_outbox')) === 0, {
      description: 'outbox emptied by the relay',
    });
  });

  it('a redelivered message (same id) adds no row, no event and no sample', async () => {
    const id = uuidv7();
    const before = (await AggregatorMetrics.get().duplicates.get()).values[0]?.value ?? 0;
    const payload = statusUpdate('web-1', 'exited', t0 + 3000);
    await site.bus.publisher.publishMany([updateRequest(payload, id), updateRequest(payload, id)]);
    await waitFor(async () => ((await AggregatorMetrics.get().duplicates.get()).values[0]?.value ?? 0) > before, {
      description: 'the duplicate to be seen',
    });
    expect(await count(site.pg, 'SELECT count(*) AS n FROM status_updates WHERE message_id = $1', [id])).toBe(1);
    expect((await events('instance:web-1')).map((e) => e.sequence)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await liveStatus('instance:web-1')).toBe(TargetStatus.Down);
  });

  it('an observation older than the state is stored but never moves the state back', async () => {
    await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('web-1', 'running', t0 + 500));
    await waitFor(
      async () =>
        (await count(site.pg, "SELECT count(*) AS n FROM status_updates WHERE target_id = 'instance:web-1'")) === 5,
      { description: 'the late row' },
    );
    expect(await liveStatus('instance:web-1')).toBe(TargetStatus.Down);
    expect((await events('instance:web-1')).length).toBe(8);
  });

  it('a status.update.batch message folds each update, idempotent per update id', async () => {
    const updates = [
      { ...statusUpdate('batch-1', 'running', t0), id: uuidv7() },
      { ...statusUpdate('batch-1', 'exited', t0 + 1000), id: uuidv7() },
      { ...statusUpdate('batch-1', 'running', t0 + 2000), id: uuidv7() },
    ];
    await site.bus.publisher.publish(Messages.StatusUpdateBatch, { updates });
    await site.bus.publisher.publish(Messages.StatusUpdateBatch, { updates }); // redelivered whole
    await waitFor(async () => (await store.getTarget('instance:batch-1'))?.seq === 6, {
      description: 'instance:batch-1 with 6 events',
    });
    await waitFor(async () => ((await AggregatorMetrics.get().duplicates.get()).values[0]?.value ?? 0) >= 4, {
      description: 'the second copy seen as duplicates',
    });
    expect(await count(site.pg, "SELECT count(*) AS n FROM status_updates WHERE target_id = 'instance:batch-1'")).toBe(
      3,
    );
    expect((await events('instance:batch-1')).map((e) => e.to_status)).toEqual([
      'UP',
      'UP',
      'DOWN',
      'DOWN',
      'UP',
      'UP',
    ]);
    expect(await liveStatus('instance:batch-1')).toBe(TargetStatus.Up);
  });

  it("an instance 'removed' leaves live state (no STALE, no deadline) and Postgres keeps its history; a newer update brings it back", async () => {
    const id = 'instance:pod-7';
    const now = Date.now();
    await site.bus.publisher.publishMany([updateRequest(statusUpdate('pod-7', 'running', now - 3000))]);
    await waitFor(async () => (await liveStatus(id)) === TargetStatus.Up, { description: 'pod-7 up' });
    await site.bus.publisher.publishMany([updateRequest(statusUpdate('pod-7', 'removed', now - 2000))]);
    await waitFor(async () => (await store.getTarget(id)) === null, { description: 'pod-7 out of live state' });
    expect((await store.listTargets({}, 1000)).items.map((t) => t.id)).not.toContain(id);
    const deadlines = await site.pg.query(
      'SELECT 1 FROM target_location_states WHERE target_id = $1 AND deadline_at IS NOT NULL',
      [id],
    );
    expect(deadlines.rowCount).toBe(0);
    const state = await site.pg.query<{ deleted: boolean }>(
      'SELECT deleted_at IS NOT NULL AS deleted FROM target_states WHERE target_id = $1',
      [id],
    );
    expect(state.rows).toEqual([{ deleted: true }]);
    expect(await count(site.pg, `SELECT count(*) AS n FROM status_updates WHERE target_id = '${id}'`)).toBe(2);
    // Its status goes to UNKNOWN in events (published as status.changed): the alert evaluator follows them, and
    // kept a pod terminating (DOWN) DOWN until its next full read — 'Target down' fired for a pod that was gone.
    const removal = [
      [3, 'ingest-a', 'UP', 'UNKNOWN'],
      [4, null, 'UP', 'UNKNOWN'],
    ];
    expect((await events(id)).map((e) => [e.sequence, e.location, e.from_status, e.to_status]).slice(2)).toEqual(
      removal,
    );
    await waitFor(() => site.changes.filter((c) => c.targetId === id).length >= 4, {
      description: "the removal's status.changed",
    });
    // A late update of its earlier life changes nothing…
    await site.bus.publisher.publishMany([updateRequest(statusUpdate('pod-7', 'running', now - 2500))]);
    await waitFor(
      async () => (await count(site.pg, `SELECT count(*) AS n FROM status_updates WHERE target_id = '${id}'`)) === 3,
      {
        description: 'the late update stored',
      },
    );
    expect(await store.getTarget(id)).toBeNull();
    // …a newer one (the pod re-created under its name) brings it back, in live state at once (past Redis's marker).
    await site.bus.publisher.publishMany([updateRequest(statusUpdate('pod-7', 'starting', now - 1000))]);
    await waitFor(async () => (await liveStatus(id)) === TargetStatus.Up, { description: 'pod-7 back' });
    expect(await site.redis.ttl(`t:${id}`)).toBe(-1); // the marker's expiry went with it
    expect((await events(id)).map((e) => [e.sequence, e.location, e.from_status, e.to_status]).slice(4)).toEqual([
      [5, 'ingest-a', 'UNKNOWN', 'UP'],
      [6, null, 'UNKNOWN', 'UP'],
    ]);
  });

  it('consensus across two locations: one UP, one DOWN is PARTIAL', async () => {
    const result = (location: string, ok: boolean) =>
      publishRequest(Messages.CheckResult, {
        checkId: 'site-a',
        targetId: 'check:site-a',
        location,
        ok,
        latencyMs: ok ? 42 : null,
        failureReason: ok ? undefined : 'connection refused',
        startedAt: new Date().toISOString(),
        intervalSeconds: 30,
      });
    await site.bus.publisher.publishMany([result('eu', true), result('us', false)]);
    const t = await waitFor(
      async () => {
        const x = await store.getTarget('check:site-a');
        return x && Object.keys(x.locations).length === 2 ? x : null;
      },
      { description: 'check:site-a from two locations' },
    );
    expect(t.status).toBe(TargetStatus.Partial);
    expect(t.locations.eu).toMatchObject({ status: TargetStatus.Up, latencyMs: 42 });
    expect(t.locations.us).toMatchObject({ status: TargetStatus.Down, detail: 'connection refused' });
    expect((await events('check:site-a')).filter((e) => e.location === null).map((e) => e.to_status)).toEqual([
      'UP',
      'PARTIAL',
    ]);
    expect((await store.listTargets({ status: ['PARTIAL'] }, 10)).items.map((x) => x.id)).toContain('check:site-a');
  });

  it("a check's own quorum, name, tags and type travel with its results: 1 of 3 down is DOWN at 30 %, PARTIAL without", async () => {
    const result = (checkId: string, location: string, ok: boolean, downQuorumPct?: number) =>
      publishRequest(Messages.CheckResult, {
        checkId,
        targetId: `check:${checkId}`,
        location,
        ok,
        latencyMs: 7,
        startedAt: new Date().toISOString(),
        intervalSeconds: 30,
        checkName: `API ${checkId}`,
        checkType: 'http',
        tags: ['team=core'],
        downQuorumPct,
      });
    await site.bus.publisher.publishMany([
      ...['eu', 'us', 'ap'].map((l) => result('q-own', l, l !== 'ap', 30)),
      ...['eu', 'us', 'ap'].map((l) => result('q-site', l, l !== 'ap')),
    ]);
    for (const [id, status] of [
      ['check:q-own', TargetStatus.Down],
      ['check:q-site', TargetStatus.Partial],
    ] as const) {
      const t = await waitFor(
        async () => {
          const x = await store.getTarget(id);
          return x && Object.keys(x.locations).length === 3 ? x : null;
        },
        { description: `${id} from three locations` },
      );
      expect(t).toMatchObject({ status, name: `API ${id.slice(6)}`, tags: ['team=core'] });
    }
    const row = await site.pg.query("SELECT down_quorum_pct FROM target_states WHERE target_id = 'check:q-own'");
    expect(row.rows[0].down_quorum_pct).toBe(30);
  });

  it('host metrics: the latest sample in live state and the host as a target', async () => {
    await site.bus.publisher.publish(Messages.HostMetrics, {
      hostId: 'node-1',
      location: 'eu',
      sampledAt: new Date().toISOString(),
      cpu: { usagePct: 12.5, cores: 4, load1: 0.5, load5: 0.4, load15: 0.3 },
      memory: { totalBytes: 8e9, usedBytes: 2e9 },
      disks: [{ mount: '/', totalBytes: 1e11, usedBytes: 5e10 }],
      network: [],
      gpus: [],
    });
    const json = await waitFor(() => store.getHostMetrics('node-1'), { description: 'host metrics in Redis' });
    expect(JSON.parse(json)).toMatchObject({ hostId: 'node-1', cpu: { usagePct: 12.5 } });
    expect(await liveStatus('host:node-1')).toBe(TargetStatus.Up);
    expect(await count(site.pg, "SELECT count(*) AS n FROM host_metrics WHERE host_id = 'node-1'")).toBe(1);
  });
});

describe('aggregator: deadlines', () => {
  it('heartbeats: runs are recorded; a missed ping turns DOWN within period + grace + sweep; a stuck run and a fail ping too', async () => {
    const monitorId = randomUUID();
    const targetId = 'check:hb-1';
    await site.pg.query(
      'INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds, max_runtime_seconds) VALUES ($1, $2, $3, $4, 1, 1, NULL)',
      [monitorId, targetId, 'nightly backup', randomUUID()],
    );
    const ping = (
      signal: 'success' | 'start' | 'fail',
      at: number,
      extra: { runId?: string; maxRuntimeSeconds?: number | null; body?: string } = {},
    ) =>
      publishRequest(Messages.PingReceived, {
        monitorId,
        targetId,
        signal,
        receivedAt: new Date(at).toISOString(),
        periodSeconds: 1,
        graceSeconds: 1,
        maxRuntimeSeconds: extra.maxRuntimeSeconds ?? null,
        runId: extra.runId,
        ...(extra.body === undefined ? {} : { body: extra.body }),
        name: 'nightly backup',
      });

    const start = Date.now();
    await site.bus.publisher.publishMany([
      ping('start', start, { runId: 'r1' }),
      ping('success', start + 300, { runId: 'r1' }),
    ]);
    await waitFor(async () => (await liveStatus(targetId)) === TargetStatus.Up, { description: 'monitor UP' });
    const [run] = (
      await site.pg.query('SELECT duration_ms, outcome, target_id FROM heartbeat_runs WHERE monitor_id = $1', [
        monitorId,
      ])
    ).rows;
    expect(run).toEqual({ duration_ms: 300, outcome: 'ok', target_id: targetId });
    const [monitor] = (
      await site.pg.query('SELECT last_ping_at, last_start_at FROM heartbeat_monitor_state WHERE monitor_id = $1', [
        monitorId,
      ])
    ).rows as Array<{ last_ping_at: Date; last_start_at: Date }>;
    expect([monitor.last_ping_at.getTime(), monitor.last_start_at.getTime()]).toEqual([start + 300, start]);

    // Last success at start+300; period 1 s + grace 1 s → DOWN at start+2300, seen within a sweep.
    await waitFor(async () => (await liveStatus(targetId)) === TargetStatus.Down, {
      timeoutMs: 6000,
      intervalMs: 20,
      description: 'monitor DOWN after a missed ping',
    });
    const late = Date.now() - (start + 300);
    expect(late).toBeGreaterThanOrEqual(2000);
    // period + grace + one sweep interval, plus what the test's polling and one batch may add.
    expect(late).toBeLessThanOrEqual(2000 + SWEEP_MS + 1000);
    expect((await events(targetId)).at(-1)).toMatchObject({
      location: null,
      to_status: 'DOWN',
      reason: 'location push: no ping within period 1s + grace 1s',
    });

    // A run that never finishes turns DOWN after its max runtime, recorded as timed out.
    const again = Date.now();
    await site.bus.publisher.publishMany([ping('success', again), ping('start', again + 10, { maxRuntimeSeconds: 1 })]);
    await waitFor(async () => (await events(targetId)).some((e) => e.reason.includes('max runtime')), {
      timeoutMs: 5000,
      description: 'max-runtime DOWN',
    });
    expect(
      (
        await site.pg.query("SELECT outcome FROM heartbeat_runs WHERE monitor_id = $1 AND outcome = 'timeout'", [
          monitorId,
        ])
      ).rowCount,
    ).toBe(1);

    // A fail ping is DOWN at once, saying what the job sent with it (its first line).
    await site.bus.publisher.publishMany([
      ping('success', Date.now()),
      ping('fail', Date.now() + 1, { body: '\n  pg_dump: disk full on /backup  \nexit status 1\n' }),
    ]);
    await waitFor(
      async () => (await events(targetId)).at(-1)?.reason === 'location push: fail ping: pg_dump: disk full on /backup',
      { description: 'DOWN by fail ping' },
    );
    expect(await liveStatus(targetId)).toBe(TargetStatus.Down);
    expect((await store.getTarget(targetId))?.locations['push']?.detail).toBe(
      'fail ping: pg_dump: disk full on /backup',
    );
  });

  it('an instance without updates turns STALE after STALE_AFTER_SECONDS', async () => {
    const t = await waitFor(
      async () => {
        const x = await store.getTarget('instance:stale-1');
        return x?.status === TargetStatus.Stale ? x : null;
      },
      { timeoutMs: 8000, description: 'instance:stale-1 STALE' },
    );
    expect(t.locations['ingest-a'].status).toBe(TargetStatus.Stale);
    expect(
      (await events('instance:stale-1')).slice(-2).map((e) => [e.location, e.from_status, e.to_status, e.reason]),
    ).toEqual([
      ['ingest-a', 'UP', 'STALE', 'no update for 5s'],
      [null, 'UP', 'STALE', 'location ingest-a: no update for 5s'],
    ]);
    await waitFor(
      () =>
        site.changes.some(
          (c) => c.targetId === 'instance:stale-1' && c.to === TargetStatus.Stale && c.location === null,
        ),
      { description: 'STALE published' },
    );
    // A newer update revives it.
    await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('stale-1', 'running', Date.now()));
    await waitFor(async () => (await liveStatus('instance:stale-1')) === TargetStatus.Up, { description: 'revived' });
  });
});

describe('aggregator: durable state', () => {
  it('rebuilds live state from Postgres after Redis was flushed', async () => {
    const ids = ['instance:web-1', 'instance:db-1', 'check:site-a', 'check:hb-1', 'host:node-1'];
    expect((await store.getTargets(ids)).size).toBe(5);
    // No "Redis is empty now" check: the aggregator's watchdog may notice the empty index and start the rebuild,
    // or the sweeper turn a target (host:node-1 goes STALE) and project it, between the flush and any read. Only a
    // rebuild brings all five back equal to Postgres below (a projection writes just the target it moved).
    expect(await flushPrefix(site.redis, site.redisPrefix)).toBeGreaterThan(0);
    // Redis must come back equal to Postgres (compared together: the sweeper may move both meanwhile).
    const pool = createSqlPool(site.database.databaseUrl, { max: 1 });
    const states = new TargetStatesRepository(pool);
    try {
      await waitFor(
        async () => {
          const [live, durable] = await Promise.all([store.getTargets(ids), states.findMany(ids)]);
          return (
            durable.length === 5 &&
            durable.every((d) => {
              const r = live.get(d.id);
              if (!r) return false;
              const locs = (t: {
                locations: Record<string, { status: string; observedAt: number; lastSeen: number }>;
              }) =>
                Object.entries(t.locations)
                  .map(([k, l]) => [k, l.status, l.observedAt, l.lastSeen])
                  .sort();
              return (
                r.status === d.status &&
                r.seq === d.seq &&
                r.since === d.since &&
                r.lastSeen === d.lastSeen &&
                r.name === d.name &&
                r.kind === d.kind &&
                JSON.stringify(r.tags) === JSON.stringify(d.tags) &&
                JSON.stringify(locs(r)) === JSON.stringify(locs(d))
              );
            })
          );
        },
        { timeoutMs: 5000, description: 'live state rebuilt equal to Postgres' },
      );
    } finally {
      await closeSqlPool(pool);
    }
    const web = await store.getTarget('instance:web-1');
    expect(web).toMatchObject({ labels: { team: 'core', env: 'prod' }, lifecycle: 'exited' });
    // (The quorum test's checks are PARTIAL and tagged team=core too: the indexes are compared for these targets.)
    const listed = async (filter: Parameters<LiveStateStore['listTargets']>[0]) =>
      (await store.listTargets(filter, 100)).items.map((t) => t.id).filter((id) => ids.includes(id));
    // The indexes come back with the rebuild's write of each target, which may land after a projection wrote the
    // target's hash (a projection after the flush sets only the index entries it changed): waited for, not raced.
    await waitFor(
      async () =>
        JSON.stringify(await listed({ tag: 'team=core' })) === JSON.stringify(['instance:web-1']) &&
        JSON.stringify(await listed({ status: ['PARTIAL'] })) === JSON.stringify(['check:site-a']),
      { timeoutMs: 5000, description: 'tag and status indexes rebuilt' },
    );
    expect(await listed({ tag: 'team=core' })).toEqual(['instance:web-1']);
    expect(await listed({ status: ['PARTIAL'] })).toEqual(['check:site-a']);
  });

  it('an upgraded Redis (an older layout: its mark, no idx:since, locations at t:{id}:loc) is rebuilt once: the index filled, locations in tl:{id}, the old hashes gone', async () => {
    const ids = ['instance:web-1', 'instance:db-1', 'check:site-a', 'check:hb-1', 'host:node-1'];
    // What layout 2's aggregator left (site.redis adds the site's key prefix): its mark, and each target's locations
    // in t:{id}:loc — also the summary key of a target "{id}:loc", so one target's locations overwrote another's.
    const located: string[] = [];
    for (const id of ids) {
      const locations = await site.redis.hgetall(`tl:${id}`);
      if (Object.keys(locations).length === 0) continue;
      located.push(id);
      await site.redis.hset(`t:${id}:loc`, { ...locations, kind: '{"layout":2}' });
    }
    expect(located.length).toBeGreaterThan(0);
    await site.redis.set('live:built:2', String(Date.now()));
    expect(await site.redis.del('idx:since', 'live:built:3', ...located.map((id) => `tl:${id}`))).toBe(
      2 + located.length,
    );
    const recent = async () => (await store.recentlyChanged(1000)).map((t) => t.id).filter((id) => ids.includes(id));
    // No "the index is empty now" check (see the flush case above): the sweeper may project a target, or the
    // watchdog rebuild, between the delete and any read. The new layout's mark below comes only from a rebuild.
    await waitFor(async () => (await recent()).length === ids.length, {
      timeoutMs: 10_000,
      description: 'the five targets in idx:since again',
    });
    // The rebuild's mark of the new layout follows the last page: once, not again.
    await waitFor(async () => (await site.redis.exists('live:built:3')) === 1, {
      timeoutMs: 10_000,
      description: 'the mark of layout 3',
    });
    for (const id of located) {
      expect(await site.redis.exists(`t:${id}:loc`)).toBe(0);
      expect(Object.keys((await store.getTarget(id))?.locations ?? {}).length).toBeGreaterThan(0);
    }
  });

  it('keeps 1-minute rollups computed from raw rows', async () => {
    await waitFor(async () => (await count(site.pg, 'SELECT count(*) AS n FROM rollup_dirty')) === 0, {
      description: 'rollups computed',
    });
    const raw = await count(site.pg, "SELECT count(*) AS n FROM status_updates WHERE target_id = 'instance:web-1'");
    expect(await count(site.pg, "SELECT sum(count) AS n FROM rollups_1m WHERE target_id = 'instance:web-1'")).toBe(raw);
    const { rows } = await site.pg.query(
      "SELECT location, count, ok_count, min_latency_ms, p95_latency_ms FROM rollups_1m WHERE target_id = 'check:site-a' ORDER BY location",
    );
    expect(rows).toEqual([
      { location: 'eu', count: 1, ok_count: 1, min_latency_ms: 42, p95_latency_ms: 42 },
      { location: 'us', count: 1, ok_count: 0, min_latency_ms: null, p95_latency_ms: null },
    ]);
  });

  it('retention (run by the lease holder) drops raw rows past 7 days and rollups past 90, keeping the rest', async () => {
    const sweeper = app.get(SweeperService);
    expect(sweeper.lease.isHeld).toBe(true);
    // A second replica cannot take the lease while this one holds it.
    const other = new AdvisoryLease({ databaseUrl: site.database.databaseUrl, name: SWEEPER_LEASE_NAME });
    expect(await other.tryAcquire()).toBe(false);
    await other.release();

    const day = 86_400_000;
    await site.pg.query(
      `INSERT INTO check_results (message_id, check_id, target_id, location, ok, occurred_at)
       SELECT gen_random_uuid(), 'old', 'check:old', 'eu', true, now() - interval '8 days' - g * interval '1 second' FROM generate_series(1, 30) g`,
    );
    await site.pg.query(
      `INSERT INTO rollups_1m (target_id, location, bucket, count, ok_count) VALUES ('check:old', 'eu', $1, 1, 1), ('check:old', 'eu', $2, 1, 1)`,
      [new Date(Date.now() - 91 * day), new Date(Date.now() - 89 * day)],
    );
    const deleted = await app.get(HistoryMaintenance).applyRetention();
    expect(deleted).toMatchObject({ check_results: 30, rollups_1m: 1, status_updates: 0 });
    expect(await count(site.pg, "SELECT count(*) AS n FROM rollups_1m WHERE target_id = 'check:old'")).toBe(1);
    expect(await count(site.pg, "SELECT count(*) AS n FROM status_updates WHERE target_id = 'instance:web-1'")).toBe(5);
  });

  it('CONSENSUS_DOWN_QUORUM_PCT=50: one of two locations DOWN makes the consensus DOWN (after a restart)', async () => {
    await app.close();
    app = await startAggregator({ ...site.env, ...lockEnv(), CONSENSUS_DOWN_QUORUM_PCT: '50' });
    const result = (location: string, ok: boolean) =>
      publishRequest(Messages.CheckResult, {
        checkId: 'site-b',
        targetId: 'check:site-b',
        location,
        ok,
        latencyMs: 5,
        startedAt: new Date().toISOString(),
      });
    await site.bus.publisher.publishMany([result('eu', true), result('us', false)]);
    await waitFor(async () => Object.keys((await store.getTarget('check:site-b'))?.locations ?? {}).length === 2, {
      description: 'check:site-b from two locations',
    });
    expect(await liveStatus('check:site-b')).toBe(TargetStatus.Down);
    // State from before the restart is intact.
    expect(await liveStatus('check:site-a')).toBe(TargetStatus.Partial);
  });
});

// Last: it cuts the lock sessions (the replica loses and retakes its shards and leases).
it('holds its advisory locks on sessions to DATABASE_LOCK_URL (never on DATABASE_URL, which may be a transaction pool)', async () => {
  const advisoryLocks = async () =>
    Number(
      (
        await site.pg.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND a.datname = current_database()`,
        )
      ).rows[0].n,
    );
  // The shard locks' session and the sweeper lease's, at least (the alert evaluator's lease is a third).
  await waitFor(async () => (await advisoryLocks()) >= 2, { description: 'advisory locks held' });
  expect(lockProxy.stats.live).toBeGreaterThanOrEqual(2);
  // Every one of them came through DATABASE_LOCK_URL: cut that way, and none is left.
  lockProxy.pause();
  lockProxy.cut();
  try {
    await waitFor(async () => (await advisoryLocks()) === 0, { description: 'no advisory lock left once cut' });
  } finally {
    lockProxy.resume();
  }
  await waitFor(async () => (await advisoryLocks()) >= 2, { description: 'locks taken again' });
});
