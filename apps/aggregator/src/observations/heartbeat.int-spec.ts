import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetKind, TargetStatus, uuidv7 } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { createBus, observationShardQueueSpecs, publishRequest, type Bus } from '@fleetwatch/messaging';
import { closeSqlPool, createSqlPool, runInSqlTransaction, TargetStatesRepository } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { createIsolatedTestSite, startAggregator, successPing, type TestSite } from '../aggregator.int-helpers';

// Heartbeat pings through the running aggregator (SPEC §5 `push`, §6 `/ping/{token}`), as
// status-ingest publishes them: delivered out of order, and received by ingest replicas at
// different locations (FLEETWATCH_LOCATION). The aggregator runs in this process on an
// isolated vhost, database and Redis prefix.

jest.setTimeout(90_000);

const SWEEP_MS = 200;
let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;
/** A second ingest replica: the same site, another location. */
let replicaB: Bus;

beforeAll(async () => {
  const name = 'agg-heartbeat';
  site = await createIsolatedTestSite(name, {
    SWEEP_INTERVAL_MS: String(SWEEP_MS),
    AGGREGATOR_BATCH_WAIT_MS: '20',
    SWEEP_CATCH_UP_MAX_MS: '500',
  });
  replicaB = createBus({
    url: site.vhost.amqpUrl,
    source: { site: 'test', service: 'status-ingest', location: 'ingest-b' },
    name: `test-${name}-b`,
    queues: observationShardQueueSpecs(),
  });
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await replicaB?.close().catch(() => undefined);
  await site?.dispose();
});

interface Schedule {
  periodSeconds: number;
  graceSeconds: number;
  maxRuntimeSeconds: number | null;
}

/** A monitor row as sync-orchestrator writes it with a push check. */
async function newMonitor(schedule: Schedule): Promise<{ monitorId: string; targetId: string; schedule: Schedule }> {
  const monitorId = randomUUID();
  const targetId = `check:${monitorId}`;
  await site.pg.query(
    'INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds, max_runtime_seconds) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [
      monitorId,
      targetId,
      `job ${monitorId}`,
      randomUUID(),
      schedule.periodSeconds,
      schedule.graceSeconds,
      schedule.maxRuntimeSeconds,
    ],
  );
  return { monitorId, targetId, schedule };
}

const ping = (
  m: { monitorId: string; targetId: string; schedule: Schedule },
  signal: 'success' | 'start' | 'fail',
  at: number,
  runId?: string,
) =>
  publishRequest(
    Messages.PingReceived,
    {
      monitorId: m.monitorId,
      targetId: m.targetId,
      signal,
      receivedAt: new Date(at).toISOString(),
      ...m.schedule,
      runId,
      name: 'job',
    },
    { id: uuidv7() },
  );

const runs = async (monitorId: string) =>
  (
    await site.pg.query<{ started_at: Date; duration_ms: number; outcome: string }>(
      'SELECT started_at, duration_ms, outcome FROM heartbeat_runs WHERE monitor_id = $1 ORDER BY started_at',
      [monitorId],
    )
  ).rows.map((r) => ({ startedAt: r.started_at.getTime(), durationMs: r.duration_ms, outcome: r.outcome }));
const locations = async (targetId: string) =>
  (
    await site.pg.query<{ location: string; status: string; run_started_at: Date | null; deadline_at: Date | null }>(
      'SELECT location, status::text, run_started_at, deadline_at FROM target_location_states WHERE target_id = $1 ORDER BY location',
      [targetId],
    )
  ).rows.map((r) => ({
    location: r.location,
    status: r.status,
    runStartedAt: r.run_started_at?.getTime() ?? null,
    deadlineAt: r.deadline_at?.getTime() ?? null,
  }));
const downEvents = async (targetId: string) =>
  (
    await site.pg.query<{ location: string | null; reason: string }>(
      "SELECT location, reason FROM status_events WHERE target_id = $1 AND to_status IN ('DOWN', 'PARTIAL') ORDER BY sequence",
      [targetId],
    )
  ).rows;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A check.lifecycle for monitor `m` as sync-orchestrator says it (check-lifecycle.ts): a push check's interval is its
 * period + grace.
 */
const lifecycleOf = (
  m: { monitorId: string; targetId: string },
  o: { state?: 'active' | 'paused'; version: number; at?: number; intervalSeconds: number },
) =>
  publishRequest(
    Messages.CheckLifecycle,
    {
      checkId: m.monitorId,
      targetId: m.targetId,
      state: o.state ?? 'active',
      version: o.version,
      at: new Date(o.at ?? Date.now()).toISOString(),
      name: 'job',
      checkType: 'push',
      tags: [],
      intervalSeconds: o.intervalSeconds,
    },
    { id: uuidv7() },
  );

describe('heartbeat pings in the aggregator', () => {
  it('a start delivered after a newer one leaves the open run as it was: its max runtime, and its success', async () => {
    const m = await newMonitor({ periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: 5 });
    const pingsStored = async () =>
      Number(
        (
          await site.pg.query<{ n: string }>('SELECT count(*) AS n FROM heartbeat_pings WHERE target_id = $1', [
            m.targetId,
          ])
        ).rows[0].n,
      );
    const t = Date.now();
    await site.bus.publisher.publishMany([ping(m, 'success', t - 10_000), ping(m, 'start', t)]);
    await waitFor(async () => (await locations(m.targetId))[0]?.runStartedAt === t, { description: 'run B open' });
    const bHeardBy = Date.now();
    // A's start, received 4 s before B's, arrives now (a client's retry, another replica's slow confirm).
    await site.bus.publisher.publishMany([ping(m, 'start', t - 4000)]);
    await waitFor(async () => (await pingsStored()) === 3, { description: 'late start folded' });
    // B's max runtime, counted from when the aggregator heard its start (its stamp, t, or a little later).
    const [held] = await locations(m.targetId);
    expect(held).toEqual({ location: 'push', status: 'UP', runStartedAt: t, deadlineAt: expect.any(Number) });
    expect(held.deadlineAt).toBeGreaterThanOrEqual(t + 5000);
    expect(held.deadlineAt).toBeLessThanOrEqual(bHeardBy + 5000);
    // B finishes at t + 2 s: its run, 2 s long; and B's max runtime (t + 5 s) was never A's (t + 1 s).
    await site.bus.publisher.publishMany([ping(m, 'success', t + 2000)]);
    await waitFor(async () => (await runs(m.monitorId)).length > 0, { description: 'run recorded' });
    const wait = t + 5000 + 3 * SWEEP_MS - Date.now();
    if (wait > 0) await sleep(wait);
    expect(await runs(m.monitorId)).toEqual([{ startedAt: t, durationMs: 2000, outcome: 'ok' }]);
    expect(await downEvents(m.targetId)).toEqual([]);
    expect((await store.getTarget(m.targetId))?.status).toBe(TargetStatus.Up);
  });

  it('a run started through one ingest replica ends through another (other FLEETWATCH_LOCATION): one location, one run, never DOWN', async () => {
    const m = await newMonitor({ periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: 2 });
    const t = Date.now();
    await site.bus.publisher.publishMany([ping(m, 'start', t, 'r1')]);
    await waitFor(async () => (await locations(m.targetId)).length === 1, { description: 'start folded' });
    await replicaB.publisher.publishMany([ping(m, 'success', t + 300, 'r1')]);
    await waitFor(async () => (await runs(m.monitorId)).length > 0, { description: 'run recorded' });
    const successHeardBy = Date.now();
    // Past the run's max runtime (t + 2 s) and a few sweeps.
    const wait = t + 2000 + 3 * SWEEP_MS - Date.now();
    if (wait > 0) await sleep(wait);
    expect(await runs(m.monitorId)).toEqual([{ startedAt: t, durationMs: 300, outcome: 'ok' }]);
    // Period + grace from the success: from its stamp (t + 300), or from when it was heard if that was later.
    const [held] = await locations(m.targetId);
    expect(held).toEqual({ location: 'push', status: 'UP', runStartedAt: null, deadlineAt: expect.any(Number) });
    expect(held.deadlineAt).toBeGreaterThanOrEqual(t + 300 + 3_660_000);
    expect(held.deadlineAt).toBeLessThanOrEqual(Math.max(t + 300, successHeardBy) + 3_660_000);
    expect(await downEvents(m.targetId)).toEqual([]);
    const live = await store.getTarget(m.targetId);
    expect([live?.status, Object.keys(live?.locations ?? {})]).toEqual([TargetStatus.Up, ['push']]);
    // History counts the pings at the same location as live state (rollups, history by location).
    expect(
      (await site.pg.query('SELECT DISTINCT location FROM heartbeat_pings WHERE target_id = $1', [m.targetId])).rows,
    ).toEqual([{ location: 'push' }]);
  });

  it("a monitor's state kept at ingest locations before is carried into its one location: stored and live, the others gone", async () => {
    const m = await newMonitor({ periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: 3 });
    const t = Date.now();
    // As pings were folded before: at each receiving replica's location. A run started through ingest-a, and
    // ingest-b's last success is older; ingest-b's deadline (t + 2 s) is due soon.
    const loc = (status: TargetStatus, at: number, extra = {}) => ({
      status,
      observedAt: at,
      lastSeen: at,
      latencyMs: null,
      detail: null,
      lifecycle: null,
      deadline: null,
      run: null,
      ...extra,
    });
    const legacy = {
      id: m.targetId,
      kind: TargetKind.Check,
      name: 'job',
      status: TargetStatus.Up,
      since: t - 60_000,
      lastSeen: t,
      lastLatencyMs: null,
      lifecycle: null,
      tags: [],
      labels: {},
      seq: 2,
      locations: {
        'ingest-a': loc(TargetStatus.Up, t - 60_000, {
          lastSeen: t,
          run: { startedAt: t, runId: null },
          deadline: { at: t + 3000, expireTo: TargetStatus.Down, reason: 'run not finished within max runtime 3s' },
        }),
        'ingest-b': loc(TargetStatus.Up, t - 30_000, {
          deadline: { at: t + 2000, expireTo: TargetStatus.Down, reason: 'no ping within period 3600s + grace 60s' },
        }),
      },
    };
    const pool = createSqlPool(site.database.databaseUrl, { max: 1 });
    try {
      await runInSqlTransaction(pool, (tx) => new TargetStatesRepository(pool).saveMany(tx, [legacy]));
    } finally {
      await closeSqlPool(pool);
    }
    await store.writeTargets([
      {
        ...legacy,
        previousStatus: null,
        lastSeen: t,
        locations: Object.fromEntries(
          Object.entries(legacy.locations).map(([k, l]) => [
            k,
            {
              status: l.status,
              observedAt: l.observedAt,
              lastSeen: l.lastSeen,
              latencyMs: null,
              detail: null,
              lifecycle: null,
            },
          ]),
        ),
      },
    ]);

    // The run ends (through either replica: both are `push` now).
    await replicaB.publisher.publishMany([ping(m, 'success', t + 500)]);
    await waitFor(async () => (await runs(m.monitorId)).length > 0, { description: 'run recorded' });
    expect(await locations(m.targetId)).toEqual([
      { location: 'push', status: 'UP', runStartedAt: null, deadlineAt: t + 500 + 3_660_000 },
    ]);
    expect(await runs(m.monitorId)).toEqual([{ startedAt: t, durationMs: 500, outcome: 'ok' }]);
    await waitFor(async () => Object.keys((await store.getTarget(m.targetId))?.locations ?? {}).join() === 'push', {
      description: 'live state at push only',
    });
    // Past both old deadlines: nothing left to expire.
    const wait = t + 3000 + 3 * SWEEP_MS - Date.now();
    if (wait > 0) await sleep(wait);
    expect(await downEvents(m.targetId)).toEqual([]);
    expect((await store.getTarget(m.targetId))?.status).toBe(TargetStatus.Up);
  });

  it('a push check resumed and never pinged again is DOWN at period + grace after the resume (not STALE)', async () => {
    const m = await newMonitor({ periodSeconds: 1, graceSeconds: 1, maxRuntimeSeconds: null });
    const lifecycle = (state: 'active' | 'paused', version: number, at: number) =>
      lifecycleOf(m, { state, version, at, intervalSeconds: 2 });
    await site.bus.publisher.publishMany([ping(m, 'success', Date.now())]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Up, { description: 'UP' });
    await site.bus.publisher.publishMany([lifecycle('paused', 2, Date.now())]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Paused, {
      description: 'PAUSED',
    });
    const resumedAt = Date.now();
    await site.bus.publisher.publishMany([lifecycle('active', 3, resumedAt)]);
    // No ping after the resume: the job is not running. DOWN once period + grace (2 s) have passed.
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Down, {
      timeoutMs: 2000 + 2000,
      intervalMs: 50,
      description: 'DOWN after the resume',
    });
    expect(Date.now() - resumedAt).toBeGreaterThanOrEqual(2000);
    const events = (
      await site.pg.query<{ location: string | null; to_status: string; reason: string }>(
        'SELECT location, to_status::text, reason FROM status_events WHERE target_id = $1 ORDER BY sequence',
        [m.targetId],
      )
    ).rows;
    expect(events.map((e) => e.to_status)).not.toContain('STALE');
    expect(events.at(-1)).toMatchObject({ location: null, to_status: 'DOWN' });
  });

  it('a push check resumed: a fail ping stamped before the resume (an ingest replica behind) but after the pause began is DOWN', async () => {
    const m = await newMonitor({ periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: null });
    const lifecycle = (state: 'active' | 'paused', version: number, at: number) =>
      lifecycleOf(m, { state, version, at, intervalSeconds: 3660 });
    const t = Date.now();
    await site.bus.publisher.publishMany([ping(m, 'success', t - 10_000)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Up, { description: 'UP' });
    await site.bus.publisher.publishMany([lifecycle('paused', 2, t - 5000), lifecycle('active', 3, t)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Unknown, {
      description: 'UNKNOWN after the resume',
    });
    // Stamped 1 s before the resume by the replica's clock: it failed, and says so (it was UNKNOWN, and no alert).
    await site.bus.publisher.publishMany([ping(m, 'fail', t - 1000)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Down, {
      description: 'DOWN after the fail ping',
    });
    expect((await locations(m.targetId)).map((l) => [l.location, l.status])).toEqual([['push', 'DOWN']]);
    expect(await downEvents(m.targetId)).toEqual([
      { location: 'push', reason: 'fail ping' },
      { location: null, reason: 'location push: fail ping' },
    ]);
    // An older success (redelivered, another replica's) stamped after the pause does not undo it.
    await site.bus.publisher.publishMany([ping(m, 'success', t - 2000)]);
    await sleep(500);
    expect((await store.getTarget(m.targetId))?.status).toBe(TargetStatus.Down);
  });

  it('a push check resumed: a fail ping older than a success heard during the pause (its latest run) does not page', async () => {
    const m = await newMonitor({ periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: null });
    const lifecycle = (state: 'active' | 'paused', version: number, at: number) =>
      lifecycleOf(m, { state, version, at, intervalSeconds: 3660 });
    const t = Date.now();
    await site.bus.publisher.publishMany([ping(m, 'success', t - 10_000)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Up, { description: 'UP' });
    await site.bus.publisher.publishMany([lifecycle('paused', 2, t - 8000)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Paused, {
      description: 'PAUSED',
    });
    // The job succeeded during the pause (heard then: only its last seen moves).
    await site.bus.publisher.publishMany([ping(m, 'success', t - 3000)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.locations.push?.lastSeen === t - 3000, {
      description: 'the success heard while paused',
    });
    await site.bus.publisher.publishMany([lifecycle('active', 3, t)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Unknown, {
      description: 'UNKNOWN after the resume',
    });
    // An earlier run's fail, heard only now (a backlog): superseded by that success.
    await site.bus.publisher.publishMany([ping(m, 'fail', t - 6000)]);
    await sleep(500);
    expect((await store.getTarget(m.targetId))?.status).toBe(TargetStatus.Unknown);
    expect(await downEvents(m.targetId)).toEqual([]);
    // A later one counts.
    await site.bus.publisher.publishMany([ping(m, 'fail', t - 2000)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Down, {
      description: 'DOWN after the later fail ping',
    });
  });

  it("a monitor's period cut while it waits for its next ping: due at its last ping + the new period + grace (not the old)", async () => {
    const m = await newMonitor({ periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: null });
    const lifecycle = (version: number, intervalSeconds: number) => lifecycleOf(m, { version, intervalSeconds });
    const pingedAt = Date.now();
    await site.bus.publisher.publishMany([ping(m, 'success', pingedAt)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Up, { description: 'UP' });
    const heardBy = Date.now();
    // Lengthened first (an hour and a minute → two hours): its deadline moves later, counted from the ping (as heard:
    // its stamp or a little later).
    await site.bus.publisher.publishMany([lifecycle(2, 7200)]);
    const moved = await waitFor(
      async () => {
        const at = (await locations(m.targetId))[0]?.deadlineAt ?? 0;
        return at >= pingedAt + 7_200_000 ? at : null;
      },
      { description: 'deadline at the last ping + 2 h' },
    );
    expect(moved).toBeLessThanOrEqual(heardBy + 7_200_000);
    // Cut to 3 s: DOWN once 3 s have passed since the ping, not an hour on.
    await site.bus.publisher.publishMany([lifecycle(3, 3)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Down, {
      timeoutMs: 10_000,
      intervalMs: 50,
      description: 'DOWN at the new period + grace',
    });
    expect(Date.now() - pingedAt).toBeGreaterThanOrEqual(3000);
    expect(await downEvents(m.targetId)).toContainEqual(
      expect.objectContaining({ reason: expect.stringMatching(/no ping within period \+ grace \(3s\)/) }),
    );
  });

  it("a monitor's period cut: every later ping through a replica not yet told (the old schedule) counts with the new one, commit after commit", async () => {
    const m = await newMonitor({ periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: null });
    const lifecycle = (version: number, intervalSeconds: number) => lifecycleOf(m, { version, intervalSeconds });
    const window = async () =>
      (
        await site.pg.query<{ ms: number | null; version: number | null }>(
          'SELECT ping_window_ms::float8 AS ms, ping_window_version AS version FROM target_states WHERE target_id = $1',
          [m.targetId],
        )
      ).rows[0];
    await site.bus.publisher.publishMany([ping(m, 'success', Date.now())]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Up, { description: 'UP' });
    // Cut from an hour and a minute to 4 s; the pings below still carry the old schedule (each ping's, as the receiving
    // replica cached it), and each is folded in a commit of its own: the window is read back from Postgres.
    await site.bus.publisher.publishMany([lifecycle(2, 4)]);
    await waitFor(async () => (await window())?.version === 2, { description: 'window stored' });
    expect(await window()).toEqual({ ms: 4000, version: 2 });
    const startedAt = Date.now();
    await site.bus.publisher.publishMany([ping(m, 'start', startedAt)]);
    await waitFor(async () => (await locations(m.targetId))[0]?.runStartedAt === startedAt, {
      description: 'run open',
    });
    // The run (no max runtime) is due within the new period + grace of its start as heard, not an hour on.
    expect((await locations(m.targetId))[0].deadlineAt).toBeLessThanOrEqual(Date.now() + 4000);
    const finishedAt = Date.now();
    await site.bus.publisher.publishMany([ping(m, 'success', finishedAt)]);
    await waitFor(async () => (await runs(m.monitorId)).length === 1, { description: 'run finished' });
    const [held] = await locations(m.targetId);
    expect(held).toMatchObject({ status: 'UP', runStartedAt: null });
    expect(held.deadlineAt).toBeGreaterThanOrEqual(finishedAt + 4000);
    expect(held.deadlineAt).toBeLessThanOrEqual(Date.now() + 4000);
    // The job stops: DOWN once the new period + grace have passed since its last ping.
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Down, {
      timeoutMs: 12_000,
      intervalMs: 50,
      description: 'DOWN at the new period + grace',
    });
    expect(Date.now() - finishedAt).toBeGreaterThanOrEqual(4000);
    expect(await downEvents(m.targetId)).toEqual([
      expect.objectContaining({ location: 'push', reason: 'no ping within period + grace (4s)' }),
      expect.objectContaining({ location: null, reason: 'location push: no ping within period + grace (4s)' }),
    ]);
  });

  it('a ping read at a newer config version than the window held (its check.lifecycle late): counted with its own schedule, never DOWN, and held for the pings after', async () => {
    const m = await newMonitor({ periodSeconds: 1, graceSeconds: 1, maxRuntimeSeconds: null });
    const window = async () =>
      (
        await site.pg.query<{ ms: number | null; version: number | null }>(
          'SELECT ping_window_ms::float8 AS ms, ping_window_version AS version FROM target_states WHERE target_id = $1',
          [m.targetId],
        )
      ).rows[0];
    /** A ping as status-ingest sends it: the schedule with the config version it was read at. */
    const read = (at: number, periodSeconds: number, graceSeconds: number, configVersion: number) =>
      successPing(m, at, { periodSeconds, graceSeconds, configVersion });
    // Version 1: every 2 s (period 1 s + grace 1 s), told and held.
    await site.bus.publisher.publishMany([lifecycleOf(m, { version: 1, intervalSeconds: 2 })]);
    await waitFor(async () => (await window())?.version === 1, { description: 'window of version 1 stored' });
    // Version 2 makes it hourly; its lifecycle is late (relay stalled). A replica told pings with it.
    const pingedAt = Date.now();
    await site.bus.publisher.publishMany([read(pingedAt, 3600, 60, 2)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Up, { description: 'UP' });
    expect(await window()).toEqual({ ms: 3_660_000, version: 2 });
    expect((await locations(m.targetId))[0].deadlineAt).toBeGreaterThanOrEqual(pingedAt + 3_660_000);
    // Past the old window (2 s) and a few sweeps: still UP (counted with the held 2 s it went DOWN here).
    await sleep(2000 + 5 * SWEEP_MS);
    expect((await store.getTarget(m.targetId))?.status).toBe(TargetStatus.Up);
    // A replica not yet told (version 1, every 2 s), in a commit of its own: the window read back counts, an hour on.
    const untoldAt = Date.now();
    await site.bus.publisher.publishMany([read(untoldAt, 1, 1, 1)]);
    await waitFor(async () => ((await locations(m.targetId))[0]?.deadlineAt ?? 0) >= untoldAt + 3_660_000, {
      description: 'deadline an hour after the ping not told',
    });
    // The lifecycle of version 2 lands at last: it says the same window and moves nothing.
    const before = (await locations(m.targetId))[0].deadlineAt;
    await site.bus.publisher.publishMany([lifecycleOf(m, { version: 2, intervalSeconds: 3660 })]);
    await waitFor(
      async () =>
        (
          await site.pg.query<{ v: number }>('SELECT config_version AS v FROM target_states WHERE target_id = $1', [
            m.targetId,
          ])
        ).rows[0]?.v === 2,
      { description: 'lifecycle of version 2 applied' },
    );
    expect((await locations(m.targetId))[0].deadlineAt).toBe(before);
    await sleep(2000 + 5 * SWEEP_MS);
    expect((await store.getTarget(m.targetId))?.status).toBe(TargetStatus.Up);
    expect(await downEvents(m.targetId)).toEqual([]);
  });

  it('an exit-code ping (/ping/{token}/{code}): 0 is UP, 3 is DOWN naming exit code 3; the code is stored with each ping', async () => {
    const m = await newMonitor({ periodSeconds: 3600, graceSeconds: 60, maxRuntimeSeconds: null });
    const withCode = (signal: 'success' | 'fail', at: number, exitCode: number | undefined, body?: string) =>
      publishRequest(
        Messages.PingReceived,
        {
          monitorId: m.monitorId,
          targetId: m.targetId,
          signal,
          ...(exitCode === undefined ? {} : { exitCode }),
          receivedAt: new Date(at).toISOString(),
          ...m.schedule,
          ...(body === undefined ? {} : { body }),
          name: 'job',
        },
        { id: uuidv7() },
      );
    const t = Date.now();
    await site.bus.publisher.publishMany([withCode('success', t, 0)]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Up, { description: 'UP' });
    await site.bus.publisher.publishMany([withCode('fail', t + 1, 3, 'rsync: connection refused\n')]);
    await waitFor(async () => (await store.getTarget(m.targetId))?.status === TargetStatus.Down, {
      description: 'DOWN by exit code 3',
    });
    expect((await store.getTarget(m.targetId))?.locations['push']?.detail).toBe(
      'fail ping (exit code 3): rsync: connection refused',
    );
    expect((await downEvents(m.targetId)).map((e) => e.reason)).toContain(
      'fail ping (exit code 3): rsync: connection refused',
    );
    // A fail ping without a code (/ping/{token}/fail, or a status-ingest of the version before): no code, as before.
    await site.bus.publisher.publishMany([withCode('success', t + 2, 0), withCode('fail', t + 3, undefined)]);
    const stored = async () =>
      (
        await site.pg.query<{ signal: string; exit_code: number | null }>(
          'SELECT signal, exit_code FROM heartbeat_pings WHERE target_id = $1 ORDER BY received_at',
          [m.targetId],
        )
      ).rows;
    await waitFor(async () => (await stored()).length === 4, { description: 'four pings stored' });
    expect(await stored()).toEqual([
      { signal: 'success', exit_code: 0 },
      { signal: 'fail', exit_code: 3 },
      { signal: 'success', exit_code: 0 },
      { signal: 'fail', exit_code: null },
    ]);
    expect((await store.getTarget(m.targetId))?.locations['push']?.detail).toBe('fail ping');
  });
});
