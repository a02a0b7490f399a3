import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { Client } from 'pg';
import type { HostDetailView, HostListResponse, HostMetricsPayload, HostMetricsResponse } from '@fleetwatch/contracts';
import { waitFor } from '@fleetwatch/testing';
import { GatewayClient } from './gateway-client';
import { createSite, type E2eSite } from './site-launcher';

// Host metrics end to end (issue 16), on the running services: a collector samples this
// machine every second and publishes host.metrics; the aggregator keeps the latest sample in
// live state, raw rows and 1-minute rollups; the gateway lists the host, answers its sample and
// series, exposes it on /metrics (promtool-clean); the collector stopped → the host turns STALE.

jest.setTimeout(300_000);

const HOST = 'e2e-host-1';
let site: E2eSite;
let gw: GatewayClient;
let pg: Client;

beforeAll(async () => {
  site = await createSite('hosts', { SWEEP_INTERVAL_MS: '250', AGGREGATOR_ROLLUP_INTERVAL_MS: '1000' });
  pg = new Client({ connectionString: site.db.databaseUrl });
  pg.on('error', () => undefined);
  await pg.connect();
  await Promise.all([site.start('sync-orchestrator'), site.start('aggregator'), site.start('api-gateway')]);
  await site.start('collector', {
    env: {
      FLEETWATCH_LOCATION: 'lab',
      COLLECTOR_HOST_ID: HOST,
      COLLECTOR_HOST_INTERVAL_SECONDS: '1',
      COLLECTOR_SPOOL_DIR: 'spool',
    },
  });
  gw = await GatewayClient.login(site.service('api-gateway').url);
});

afterAll(async () => {
  await pg?.end().catch(() => undefined);
  await site?.stop();
});

describe('host metrics from a real collector', () => {
  it('lists the host UP with this machine’s real figures, in live state and history', async () => {
    const listed = await waitFor(
      async () => {
        const res = await gw.request<HostListResponse>('GET', '/api/v1/hosts');
        const h = res.body.items?.find((i) => i.id === HOST);
        return h?.status === 'UP' && h.lastSample ? h : null;
      },
      { timeoutMs: 90_000, intervalMs: 500, description: `${HOST} UP with a sample` },
    );
    expect(listed.locations).toEqual(['lab']);
    expect(listed.lastSample?.cores).toBe(cpus().length);
    expect(listed.lastSample?.memoryTotalBytes).toBeGreaterThan(totalmem() * 0.5);
    expect(listed.lastSample?.memoryTotalBytes).toBeLessThanOrEqual(totalmem() * 1.01);
    expect(listed.lastSample?.cpuPct).toBeGreaterThanOrEqual(0);
    expect(listed.lastSample?.diskTotalBytes).toBeGreaterThan(0);

    const detail = await gw.request<HostDetailView>('GET', `/api/v1/hosts/${HOST}`);
    expect(detail.status).toBe(200);
    expect(detail.body.sample?.disks.some((d) => d.mount === '/')).toBe(true);
    expect(detail.body.system?.platform).toBe(process.platform);
  });

  it('the first sample carries no network rate (unknown, not zero); later ones do', async () => {
    const rows = await waitFor(
      async () => {
        const r = await pg.query<{ data: HostMetricsPayload }>(
          'SELECT data FROM host_metrics WHERE host_id = $1 ORDER BY sampled_at LIMIT 3',
          [HOST],
        );
        return r.rows.length === 3 ? r.rows.map((x) => x.data) : null;
      },
      { timeoutMs: 30_000, description: 'three raw samples' },
    );
    const first = rows[0];
    for (const n of first.network) expect([n.rxBytesPerSec, n.txBytesPerSec]).toEqual([null, null]);
    const later = rows[2];
    expect(later.network.length).toBeGreaterThan(0);
    for (const n of later.network) expect(typeof n.rxBytesPerSec).toBe('number');
  });

  it('series from raw samples and from rollups; host series on /metrics pass promtool', async () => {
    const raw = await gw.request<HostMetricsResponse>('GET', `/api/v1/hosts/${HOST}/metrics?minutes=5`);
    expect(raw.status).toBe(200);
    const cpu = raw.body.series.find((s) => s.series === 'cpu_pct');
    expect(cpu?.points.length).toBeGreaterThanOrEqual(3);
    const rolled = await waitFor(
      async () => {
        const res = await gw.request<HostMetricsResponse>('GET', `/api/v1/hosts/${HOST}/metrics?minutes=120`);
        return res.body.series?.find((s) => s.series === 'mem_used_bytes' && s.points.length > 0) ? res.body : null;
      },
      // A minute is rolled up once it has ended (and 5 s more).
      { timeoutMs: 150_000, intervalMs: 1000, description: 'rollups' },
    );
    expect(rolled.resolution).toBe('rollup');

    const text = await waitFor(
      async () => {
        const t = await (await fetch(`${site.service('api-gateway').url}/metrics`)).text();
        return t.includes(`fleetwatch_host_cpu_ratio{host="${HOST}"}`) ? t : null;
      },
      { description: 'host series on /metrics' },
    );
    expect(text).toContain(`fleetwatch_host_up{host="${HOST}",location="lab"} 1`);
    expect(text).toMatch(new RegExp(`^fleetwatch_host_memory_total_bytes\\{host="${HOST}"\\} \\d`, 'm'));
    expect(text).toMatch(new RegExp(`^fleetwatch_host_disk_used_bytes\\{host="${HOST}",mount="/"\\} \\d`, 'm'));
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    if (check.error)
      throw new Error('promtool is not installed (apt-get install -y --no-install-recommends prometheus)');
    expect({ status: check.status, output: `${check.stdout}${check.stderr}`.trim() }).toEqual({
      status: 0,
      output: '',
    });
  });

  it('the collector stopped → its host turns STALE (2 intervals + slack)', async () => {
    await site.service('collector').stop();
    const stale = await waitFor(
      async () => {
        const res = await gw.request<HostDetailView>('GET', `/api/v1/hosts/${HOST}`);
        return res.body.target?.status === 'STALE' ? res.body : null;
      },
      { timeoutMs: 60_000, intervalMs: 500, description: `${HOST} STALE` },
    );
    expect(stale.target.locations).toEqual([expect.objectContaining({ location: 'lab', status: 'STALE' })]);
    // The last sample is kept for the detail page; /metrics keeps only host_up 0.
    expect(stale.sample?.hostId).toBe(HOST);
    const text = await waitFor(
      async () => {
        const t = await (await fetch(`${site.service('api-gateway').url}/metrics`)).text();
        return t.includes(`fleetwatch_host_up{host="${HOST}",location="lab"} 0`) ? t : null;
      },
      { description: 'host_up 0' },
    );
    expect(text).not.toContain(`fleetwatch_host_cpu_ratio{host="${HOST}"}`);
  });
});
