import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetKind, type HostMetricsPayload } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { waitFor } from '@fleetwatch/testing';
import { createIsolatedTestSite, startAggregator, type TestSite } from '../../aggregator.int-helpers';
import { alertsOf, putRule } from './alert-evaluation.int-helpers';

// A GPU fallen off the bus (Xid 79) leaves the host's samples; the collector lists it in `missingGpus`. Through the
// aggregator: the list is kept in the host's live sample (what the hosts API serves), and a rule `gpus_missing above
// 0` on hosts fires on it — where the lost GPU's own temperature alert could only end (series_absent).

jest.setTimeout(90_000);

const RULE = 'r-gpu-lost';
const HOST = 'lost-gpu-box';
const LOST = {
  index: 1,
  uuid: 'GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03',
  name: 'NVIDIA H100 80GB HBM3',
  busId: '00000000:5D:00.0',
  problem: 'Unable to determine the device handle for GPU 0000:5D:00.0: GPU is lost.',
};

let site: TestSite;
let app: INestApplicationContext;

function sample(indexes: number[], missingGpus: HostMetricsPayload['missingGpus']): HostMetricsPayload {
  return {
    hostId: HOST,
    location: 'lab-1',
    sampledAt: new Date().toISOString(),
    intervalSeconds: 1,
    cpu: { usagePct: 5, cores: 4, load1: 0.1, load5: 0.1, load15: 0.1 },
    memory: { totalBytes: 8e9, usedBytes: 2e9 },
    disks: [],
    network: [],
    gpus: indexes.map((index) => ({
      index,
      name: 'NVIDIA H100 80GB HBM3',
      utilizationPct: 50,
      memoryUsedBytes: 1e9,
      memoryTotalBytes: 8e10,
      temperatureC: 60,
      powerW: null,
    })),
    ...(missingGpus !== undefined ? { missingGpus } : {}),
  };
}

beforeAll(async () => {
  site = await createIsolatedTestSite('gpus-missing', { AGGREGATOR_BATCH_WAIT_MS: '5' });
  await putRule(site.pg, RULE, {
    name: 'GPU lost',
    selector: { kinds: [TargetKind.Host] },
    condition: { type: 'metric', metric: { kind: 'gpus_missing' }, op: 'above', threshold: 0 },
    for: '0s',
    severity: 'critical',
    annotations: { summary: '{{ alert.value }} GPU(s) missing on {{ target.name }}' },
  });
  app = await startAggregator(site.env);
});

afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

it('a host sample listing a missing GPU fires `gpus_missing above 0`, and the list stays in the live sample', async () => {
  const store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
  // Both GPUs there: the count is 0, nothing fires.
  await site.bus.publisher.publish(Messages.HostMetrics, sample([0, 1], []));
  await waitFor(async () => (await store.getHostMetricsMany([HOST])).has(HOST), {
    timeoutMs: 20_000,
    description: 'the first sample in live state',
  });
  expect(await alertsOf(site.pg, RULE)).toEqual([]);

  // GPU 1 falls off the bus: the sample has GPU 0 only, and lists GPU 1 missing.
  const since = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 5));
  await site.bus.publisher.publish(Messages.HostMetrics, sample([0], [{ ...LOST, since }]));
  await waitFor(async () => (await alertsOf(site.pg, RULE)).some((a) => a.state === 'firing'), {
    timeoutMs: 20_000,
    description: 'gpus_missing firing',
  });
  expect(await alertsOf(site.pg, RULE)).toEqual([{ target: `host:${HOST}`, state: 'firing' }]);
  const live = JSON.parse((await store.getHostMetricsMany([HOST])).get(HOST) ?? '{}') as HostMetricsPayload;
  expect(live.missingGpus).toEqual([{ ...LOST, since }]);
  const { rows } = await site.pg.query<{ value: number }>(
    'SELECT value FROM alert_states WHERE rule_id = $1 AND state = $2',
    [RULE, 'firing'],
  );
  expect(rows.map((r) => Number(r.value))).toEqual([1]);
});
