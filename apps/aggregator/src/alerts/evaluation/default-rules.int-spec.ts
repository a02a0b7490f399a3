import type { INestApplicationContext } from '@nestjs/common';
import { DEFAULT_ALERT_RULES, Messages, type HostMetricsPayload } from '@fleetwatch/contracts';
import { waitFor } from '@fleetwatch/testing';
import { createIsolatedTestSite, startAggregator, statusUpdate, type TestSite } from '../../aggregator.int-helpers';
import { alertsOf, notified, putRule } from './alert-evaluation.int-helpers';

// Issue 18: the shipped rules (contracts' DEFAULT_ALERT_RULES), stored as the sync-orchestrator's seeder
// stores them, work end to end in the aggregator: status rules on pushed instances (DOWN pending for its
// 1 m, STALE firing at once) and metric rules on a host's live sample (disk and GPU temperature firing,
// CPU pending for its 5 m, a GPU fallen off the bus pending for its 1 m). A channel is attached to each (as a user would; the shipped rules have
// none) with no group wait, and every alert alone in its group, so each firing alert is one message.

jest.setTimeout(90_000);

const CHANNEL = 'ch-defaults';
const STALE_S = 5;
let site: TestSite;
let app: INestApplicationContext;

function hostSample(hostId: string): HostMetricsPayload {
  return {
    hostId,
    location: 'lab-1',
    sampledAt: new Date().toISOString(),
    intervalSeconds: 1,
    cpu: { usagePct: 97, cores: 4, load1: 3.5, load5: 3, load15: 2 },
    memory: { totalBytes: 8e9, usedBytes: 2e9, swapTotalBytes: 0, swapUsedBytes: 0 },
    disks: [
      { mount: '/', totalBytes: 1e11, usedBytes: 9.5e10 },
      { mount: '/data', totalBytes: 1e11, usedBytes: 1e10 },
    ],
    network: [],
    gpus: [
      {
        index: 0,
        name: 'NVIDIA H200',
        utilizationPct: 50,
        memoryUsedBytes: 1e9,
        memoryTotalBytes: 1.4e11,
        temperatureC: 91,
        powerW: null,
      },
      {
        index: 1,
        name: 'NVIDIA H200',
        utilizationPct: 10,
        memoryUsedBytes: 1e9,
        memoryTotalBytes: 1.4e11,
        temperatureC: 60,
        powerW: null,
      },
    ],
    // A third GPU fell off the bus.
    missingGpus: [
      {
        index: 2,
        uuid: 'GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03',
        name: 'NVIDIA H200',
        since: new Date().toISOString(),
      },
    ],
    uptimeSeconds: 3600,
    system: { hostname: hostId, platform: 'linux', arch: 'x64', collectorVersion: '0.1.0' },
  };
}

beforeAll(async () => {
  site = await createIsolatedTestSite('alert-defaults', {
    STALE_AFTER_SECONDS: String(STALE_S),
    SWEEP_INTERVAL_MS: '200',
    AGGREGATOR_BATCH_WAIT_MS: '5',
  });
  for (const { id, ...rule } of DEFAULT_ALERT_RULES)
    await putRule(site.pg, id, {
      ...rule,
      channels: [CHANNEL],
      grouping: { groupBy: ['...'], groupWait: '0s', groupInterval: '1s' },
    });
  app = await startAggregator(site.env);
});

afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

it('the shipped rules fire, pend and notify as written', async () => {
  await site.bus.publisher.publish(Messages.HostMetrics, hostSample('gpu-box'));
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-d', 'exited', Date.now()));
  await site.bus.publisher.publish(Messages.StatusUpdate, statusUpdate('api-s', 'running', Date.now()));

  const host = 'host:gpu-box';
  // Metric rules: one alert per matching series (disk "/", GPU 0), none for the healthy ones.
  await waitFor(async () => (await alertsOf(site.pg, 'default.host-disk-full')).length === 1, {
    timeoutMs: 15_000,
    description: 'disk alert',
  });
  const { rows } = await site.pg.query<{ rule_id: string; state: string; labels: Record<string, string> }>(
    `SELECT rule_id, state, labels FROM alert_states WHERE target_id = $1 AND rule_id <> 'default.target-stale'
     ORDER BY rule_id COLLATE "C"`,
    [host],
  );
  expect(rows.map((r) => [r.rule_id, r.state, r.labels['mount'] ?? r.labels['device'] ?? null])).toEqual([
    ['default.gpu-temperature-high', 'firing', '0'],
    ['default.gpus-missing', 'pending', null],
    ['default.host-cpu-high', 'pending', null],
    ['default.host-disk-full', 'firing', '/'],
  ]);
  expect(rows.every((r) => r.labels['target'] === host && r.labels['alertname'])).toBe(true);

  // Status rules: DOWN waits its minute; a silent instance turns STALE and fires at once.
  expect(await alertsOf(site.pg, 'default.target-down')).toEqual([{ target: 'instance:api-d', state: 'pending' }]);
  await waitFor(
    async () =>
      (await alertsOf(site.pg, 'default.target-stale')).some(
        (a) => a.target === 'instance:api-s' && a.state === 'firing',
      ),
    { timeoutMs: (STALE_S + 10) * 1000, description: 'stale alert' },
  );

  // One firing message per firing alert (each alert its own group); nothing for the pending ones.
  const firingAlerts = await waitFor(
    async () => {
      const n = (await site.pg.query("SELECT 1 FROM alert_states WHERE state = 'firing'")).rowCount ?? 0;
      const sent = await notified(site.pg, CHANNEL);
      return sent.length === n ? sent : null;
    },
    { timeoutMs: 10_000, description: 'one message per firing alert' },
  );
  expect(firingAlerts.length).toBeGreaterThanOrEqual(3);
  expect(firingAlerts.every((m) => m.status === 'firing')).toBe(true);
});
