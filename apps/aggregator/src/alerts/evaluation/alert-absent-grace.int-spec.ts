import { randomUUID } from 'node:crypto';
import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetIds, TargetKind, type CheckResultPayload } from '@fleetwatch/contracts';
import type { ChannelNotification } from '@fleetwatch/alerting';
import { LiveStateStore } from '@fleetwatch/live-state';
import { AlertEventsRepository, closeSqlPool, createSqlPool, type SqlPool } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { createIsolatedTestSite, startAggregator, type TestSite } from '../../aggregator.int-helpers';
import { alertsOf, evaluatorOutsideModule, putRule } from './alert-evaluation.int-helpers';

// The grace a missing series gets scales with how often its target reports: a check run every 10 minutes whose one
// run read nothing (a failed probe) is a gap of one interval, not its data gone — its firing alert stays firing
// (no false RESOLVED, then a new FIRING) for two intervals (20 min), not the fixed 5 minutes, and then ends as
// `series_absent` with the time it really had no data ("no data for 20 min"), in its RESOLVED message and in the
// history. The aggregator ingests the check's result (its STALE deadline names the interval) and fires; an evaluator on
// a clock of the test's own then walks the grace.

jest.setTimeout(90_000);

const RULE = 'r-lag-grace';
const CHANNEL = 'ch-lag-grace';
const CHECK = randomUUID();
const TARGET = TargetIds.check(CHECK);
const LOCATION = 'lab-1';
const INTERVAL_S = 600;
const MIN = 60_000;

let site: TestSite;
let pool: SqlPool;

function result(at: number, lag: number | null): CheckResultPayload {
  return {
    checkId: CHECK,
    targetId: TARGET,
    location: LOCATION,
    ok: lag !== null,
    latencyMs: 3,
    attempt: 1,
    startedAt: new Date(at).toISOString(),
    intervalSeconds: INTERVAL_S,
    checkName: 'replica lag',
    checkType: 'postgres',
    ...(lag !== null ? { metrics: [{ name: 'pg_lag_seconds', value: lag }] } : {}),
  };
}

beforeAll(async () => {
  site = await createIsolatedTestSite('alert-grace', { AGGREGATOR_BATCH_WAIT_MS: '5' });
  await putRule(site.pg, RULE, {
    name: 'Replica lag',
    selector: { kinds: [TargetKind.Check] },
    condition: {
      type: 'metric',
      metric: { kind: 'check_metric', name: 'pg_lag_seconds', labels: {} },
      op: 'above',
      threshold: 30,
    },
    for: '0s',
    severity: 'warning',
    channels: [CHANNEL],
    grouping: { groupBy: ['alertname', 'target'], groupWait: '0s', groupInterval: '1s' },
  });
  pool = createSqlPool(site.database.databaseUrl);
});

afterAll(async () => {
  if (pool) await closeSqlPool(pool);
  await site?.dispose();
});

it('a check run every 10 min whose run read nothing keeps its alert firing for two intervals, then ends as series_absent saying how long', async () => {
  const app: INestApplicationContext = await startAggregator(site.env);
  const first = Date.now();
  try {
    await site.bus.publisher.publish(Messages.CheckResult, result(first, 120));
    await waitFor(async () => (await alertsOf(site.pg, RULE)).some((a) => a.state === 'firing'), {
      timeoutMs: 20_000,
      description: 'the lag alert firing',
    });
  } finally {
    await app.close();
  }

  let clock = Date.now() + 1000;
  const store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
  // Every tick a full one (as each resync makes it, every 5 min by default): each alert is evaluated, due or not.
  const evaluator = evaluatorOutsideModule(site, pool, {
    externalURL: 'https://fleet.example.com',
    resyncMs: 1,
    now: () => clock,
  });
  await evaluator.tick();
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state)).toEqual(['firing']);

  // Its next run, an interval on, read nothing (the probe failed): the location reports no figures.
  clock = first + INTERVAL_S * 1000;
  await store.setCheckMetricsMany([
    { targetId: TARGET, location: LOCATION, at: clock, json: '[]', ttlSeconds: 3 * INTERVAL_S },
  ]);
  await evaluator.tick();
  const absentSince = clock;
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state)).toEqual(['firing']);

  // The fixed 5 minutes are no grace for a check that reports every 10: still firing, nothing resolved.
  clock = absentSince + 5 * MIN;
  await evaluator.tick();
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state)).toEqual(['firing']);
  clock = absentSince + 2 * INTERVAL_S * 1000 - 1;
  await evaluator.tick();
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state)).toEqual(['firing']);

  // Two intervals without a figure: its data is gone.
  clock = absentSince + 2 * INTERVAL_S * 1000;
  await evaluator.tick();
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state)).toEqual(['resolved']);

  const { rows } = await site.pg.query<{ change: string; end_reason: string | null }>(
    `SELECT from_state || '>' || to_state AS change, end_reason FROM alert_events WHERE target_id = $1
     ORDER BY occurred_at, id`,
    [TARGET],
  );
  expect(rows.map((r) => `${r.change} ${r.end_reason}`)).toEqual([
    'inactive>firing null',
    'firing>resolved series_absent',
  ]);
  // The history says how long, as the message does.
  const [ended] = await new AlertEventsRepository(pool).list({ limit: 1, targetId: TARGET });
  expect(ended).toMatchObject({ to: 'resolved', endReason: 'series_absent', absentSince });

  const queued = await site.pg.query<{ notification: ChannelNotification }>(
    `SELECT notification FROM alert_delivery_queue WHERE channel_id = $1 AND notification->>'status' = 'resolved'`,
    [CHANNEL],
  );
  expect(queued.rows.map((r) => r.notification.alerts[0])).toMatchObject([
    { status: 'resolved', endReason: 'series_absent', endReasonText: 'series absent (no data for 20 min)' },
  ]);
});
