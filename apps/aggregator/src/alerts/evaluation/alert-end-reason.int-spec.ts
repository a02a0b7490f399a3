import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetKind, type AlertStateChangedPayload, type HostMetricsPayload } from '@fleetwatch/contracts';
import { emailMessage, webhookBody, type ChannelNotification, type WebhookBody } from '@fleetwatch/alerting';
import { LiveStateStore } from '@fleetwatch/live-state';
import { closeSqlPool, createSqlPool, type SqlPool } from '@fleetwatch/persistence';
import { waitFor } from '@fleetwatch/testing';
import { startAggregator, type TestSite } from '../../aggregator.int-helpers';
import { alertsOf, createAlertEvaluationSite, evaluatorOutsideModule, putRule } from './alert-evaluation.int-helpers';

// Why an alert ended reaches the people who read about it: a disk alert whose mount disappeared from the host's samples
// (the host still reporting) ends, after its 5-minute grace, as `series_absent` — in alert_events, on
// `alert.state-changed` and in its RESOLVED notification ("resolved: series absent (no data for 5 min)") — while one
// whose figure went back under the threshold ends as `condition_cleared`, its message as ever. The aggregator ingests
// the host's first sample and fires; an evaluator on a clock of the test's own then walks the grace.

jest.setTimeout(90_000);

const RULE = 'r-disk-end';
const CHANNEL = 'ch-end';
const HOST = 'end-box';
const TARGET = `host:${HOST}`;

let site: TestSite;
let pool: SqlPool;
/** alert.state-changed as consumed from a queue bound to it. */
const published: AlertStateChangedPayload[] = [];

function sample(disks: Record<string, number>, at: number): HostMetricsPayload {
  return {
    hostId: HOST,
    location: 'lab-1',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 1,
    cpu: { usagePct: 5, cores: 4, load1: 0.1, load5: 0.1, load15: 0.1 },
    memory: { totalBytes: 8e9, usedBytes: 2e9, swapTotalBytes: 0, swapUsedBytes: 0 },
    disks: Object.entries(disks).map(([mount, pct]) => ({ mount, totalBytes: 1e11, usedBytes: pct * 1e9 })),
    network: [],
    gpus: [],
    uptimeSeconds: 3600,
    system: { hostname: HOST, platform: 'linux', arch: 'x64', collectorVersion: '0.1.0' },
  };
}

beforeAll(async () => {
  site = await createAlertEvaluationSite('alert-end', (envelope) =>
    published.push(envelope.payload as AlertStateChangedPayload),
  );
  await putRule(site.pg, RULE, {
    name: 'Disk full',
    selector: { kinds: [TargetKind.Host] },
    condition: { type: 'metric', metric: { kind: 'host_disk_pct' }, op: 'above', threshold: 90 },
    for: '0s',
    severity: 'warning',
    annotations: { summary: 'Disk {{ labels.mount }} on {{ target.name }} at {{ alert.value | round: 1 }} %' },
    channels: [CHANNEL],
    grouping: { groupBy: ['alertname', 'target', 'mount'], groupWait: '0s', groupInterval: '1s' },
  });
  pool = createSqlPool(site.database.databaseUrl);
});

afterAll(async () => {
  if (pool) await closeSqlPool(pool);
  await site?.dispose();
});

it('an alert whose series went absent ends as series_absent in the history, on the bus and in its RESOLVED message; one back under its threshold as condition_cleared', async () => {
  // The aggregator takes the host's sample, and its evaluator fires both disks.
  const app: INestApplicationContext = await startAggregator(site.env);
  try {
    await site.bus.publisher.publish(Messages.HostMetrics, sample({ '/': 95, '/data': 96 }, Date.now()));
    await waitFor(async () => (await alertsOf(site.pg, RULE)).filter((a) => a.state === 'firing').length === 2, {
      timeoutMs: 20_000,
      description: 'both disks firing',
    });
  } finally {
    await app.close();
  }

  // An evaluator on the test's clock takes over (as at a failover): the states continue from Postgres.
  let clock = Date.now() + 2000;
  const store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
  const evaluator = evaluatorOutsideModule(site, pool, { externalURL: 'https://fleet.example.com', now: () => clock });
  await evaluator.tick();
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state)).toEqual(['firing', 'firing']);

  // The next sample: '/' is gone from it (unmounted), '/data' is back under the threshold.
  clock += 1000;
  await store.setHostMetrics(HOST, JSON.stringify(sample({ '/data': 40 }, clock)), clock);
  await evaluator.tick();
  // '/' keeps firing through its grace; '/data' resolved.
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state).sort()).toEqual(['firing', 'resolved']);
  clock += 5 * 60_000 - 1;
  await evaluator.tick();
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state).sort()).toEqual(['firing', 'resolved']);
  clock += 1;
  await evaluator.tick();
  expect((await alertsOf(site.pg, RULE)).map((a) => a.state)).toEqual(['resolved', 'resolved']);
  clock += 2000;
  await evaluator.tick();

  // The history: each end with its reason.
  const { rows } = await site.pg.query<{ mount: string; change: string; end_reason: string | null }>(
    `SELECT labels->>'mount' AS mount, from_state || '>' || to_state AS change, end_reason FROM alert_events
     WHERE target_id = $1 ORDER BY occurred_at, id`,
    [TARGET],
  );
  expect(rows.map((r) => `${r.mount} ${r.change} ${r.end_reason}`).sort()).toEqual([
    '/ firing>resolved series_absent',
    '/ inactive>firing null',
    '/data firing>resolved condition_cleared',
    '/data inactive>firing null',
  ]);

  // On the bus, as published after the commit.
  await waitFor(() => published.filter((p) => p.to === 'resolved').length === 2, {
    timeoutMs: 10_000,
    description: 'both ends published',
  });
  expect(
    published
      .filter((p) => p.to === 'resolved')
      .map((p) => `${p.labels['mount']} ${p.endReason}`)
      .sort(),
  ).toEqual(['/ series_absent', '/data condition_cleared']);
  expect(published.filter((p) => p.to === 'firing').every((p) => p.endReason === undefined)).toBe(true);

  // The RESOLVED messages queued for the channel: the absent disk's says so, in every format built from it.
  const queued = await site.pg.query<{ notification: ChannelNotification }>(
    `SELECT notification FROM alert_delivery_queue WHERE channel_id = $1 AND notification->>'status' = 'resolved'`,
    [CHANNEL],
  );
  const byMount = new Map(queued.rows.map((r) => [r.notification.alerts[0].labels['mount'], r.notification]));
  expect([...byMount.keys()].sort()).toEqual(['/', '/data']);
  const absent = byMount.get('/') as ChannelNotification;
  expect(absent.alerts[0]).toMatchObject({
    status: 'resolved',
    endReason: 'series_absent',
    endReasonText: 'series absent (no data for 5 min)',
  });
  const mail = emailMessage({ from: 'fleetwatch@example.com', to: ['oncall@example.com'] }, absent);
  expect(mail.subject).toBe(`[RESOLVED] Disk full (/ ${TARGET})`);
  expect(mail.text).toContain(`[RESOLVED] Disk / on ${HOST} at 95 % — resolved: series absent (no data for 5 min)`);
  const hook = JSON.parse(webhookBody('hook', absent)) as WebhookBody;
  expect(hook.alerts[0]).toMatchObject({
    endReason: 'series_absent',
    endReasonText: 'series absent (no data for 5 min)',
  });

  const cleared = byMount.get('/data') as ChannelNotification;
  expect(cleared.alerts[0]).toMatchObject({ status: 'resolved', endReason: 'condition_cleared' });
  expect(emailMessage({ from: 'a@example.com', to: ['b@example.com'] }, cleared).text).not.toContain('— resolved:');
});
