import type { INestApplicationContext } from '@nestjs/common';
import { Messages, TargetKind, TargetStatus, uuidv7, type HostMetricsPayload } from '@fleetwatch/contracts';
import { LiveStateStore } from '@fleetwatch/live-state';
import { publishRequest } from '@fleetwatch/messaging';
import { waitFor } from '@fleetwatch/testing';
import { count, createIsolatedTestSite, flushPrefix, startAggregator, type TestSite } from '../aggregator.int-helpers';
import type { AggregatorConfig } from '../config';
import { HistoryMaintenance } from '../history/history-maintenance.service';
import { LiveStateBoot } from '../live/live-state.boot';
import { AGGREGATOR_CONFIG } from '../tokens';

// Issue 16, aggregator side of host metrics: host.metrics published on the real bus →
// the host's target (UP while samples arrive, STALE when they stop), its latest sample in
// live state (restored by a rebuild), raw rows and 1-minute rollups (idempotent under
// redelivery, corrected by a late sample), and retention of both.

jest.setTimeout(90_000);

let site: TestSite;
let app: INestApplicationContext;
let store: LiveStateStore;

beforeAll(async () => {
  const name = 'agg-hosts';
  site = await createIsolatedTestSite(name, {
    SWEEP_INTERVAL_MS: '200',
    AGGREGATOR_ROLLUP_INTERVAL_MS: '300',
    AGGREGATOR_BATCH_WAIT_MS: '20',
  });
  app = await startAggregator(site.env);
  store = new LiveStateStore(site.redis, { keyPrefix: site.redisPrefix });
});
afterAll(async () => {
  await app?.close();
  await site?.dispose();
});

const ODD_MOUNT = '/mnt/odd "name"\\ünï ✓ {x="y"}';
/** A minute well in the past, so every sample of the rollup test falls in known minutes. */
const M = Math.floor((Date.now() - 10 * 60_000) / 60_000) * 60_000;

function sample(hostId: string, at: number, cpu: number, extra: Partial<HostMetricsPayload> = {}): HostMetricsPayload {
  return {
    hostId,
    location: 'lab-2',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 1,
    cpu: { usagePct: cpu, cores: 4, load1: 0.5, load5: 0.4, load15: 0.3, perCorePct: [cpu, cpu, cpu, cpu] },
    memory: { totalBytes: 8e9, usedBytes: cpu * 1e8, swapTotalBytes: 1e9, swapUsedBytes: 0 },
    disks: [
      { mount: '/', totalBytes: 1e11, usedBytes: cpu * 1e9, readBytesPerSec: null, writeBytesPerSec: 10 },
      // Huge values average without overflow.
      { mount: ODD_MOUNT, totalBytes: Number.MAX_VALUE, usedBytes: Number.MAX_VALUE },
    ],
    network: [{ iface: 'eth0', rxBytesPerSec: cpu === 10 ? null : cpu * 100, txBytesPerSec: 5 }],
    gpus: [
      {
        index: 0,
        name: 'NVIDIA H200',
        utilizationPct: cpu,
        memoryUsedBytes: 1e9,
        memoryTotalBytes: 1.4e11,
        temperatureC: 40 + cpu / 10,
        powerW: null,
      },
    ],
    uptimeSeconds: 3600,
    system: { hostname: hostId, platform: 'linux', arch: 'x64', collectorVersion: '0.1.0' },
    ...extra,
  };
}

const publish = (payload: HostMetricsPayload, id: string = uuidv7()) =>
  site.bus.publisher.publishMany([publishRequest(Messages.HostMetrics, payload, { id })]);

async function rollup(hostId: string, bucket: number, series: string, device = '') {
  const r = await site.pg.query<{ count: number; avg: number; max: number }>(
    'SELECT count, avg, max FROM host_rollups_1m WHERE host_id = $1 AND bucket = $2 AND series = $3 AND device = $4',
    [hostId, new Date(bucket).toISOString(), series, device],
  );
  return r.rows[0] ? { count: r.rows[0].count, avg: Number(r.rows[0].avg), max: Number(r.rows[0].max) } : null;
}

/** Days ago that are past the raw window and inside the rollup window (from the aggregator's config). */
function midDays(): number {
  const { rawDays, rollupDays } = app.get<AggregatorConfig>(AGGREGATOR_CONFIG).retention;
  expect(rollupDays - rawDays).toBeGreaterThanOrEqual(2);
  return rawDays + 1;
}

describe('aggregator: host metrics', () => {
  const host = 'lab-host-1';
  const firstId = uuidv7();

  it('stores raw samples, keeps the latest in live state and shows the host as a target', async () => {
    await publish(sample(host, M + 5_000, 10), firstId);
    await publish(sample(host, M + 20_000, 20));
    await publish(sample(host, M + 40_000, 60));
    await publish(sample(host, M + 70_000, 50));
    await waitFor(
      async () => (await count(site.pg, 'SELECT count(*) AS n FROM host_metrics WHERE host_id = $1', [host])) === 4,
      { description: '4 raw rows', timeoutMs: 30_000 },
    );
    const latest = await waitFor(
      async () => {
        const json = await store.getHostMetrics(host);
        return json && (JSON.parse(json) as HostMetricsPayload).sampledAt === new Date(M + 70_000).toISOString()
          ? (JSON.parse(json) as HostMetricsPayload)
          : null;
      },
      { description: 'latest sample in live state' },
    );
    expect(latest).toMatchObject({ hostId: host, cpu: { usagePct: 50 }, system: { hostname: host } });
    // The raw row keeps the whole payload (the rebuild restores from it).
    const row = await site.pg.query<{ data: HostMetricsPayload }>(
      'SELECT data FROM host_metrics WHERE host_id = $1 ORDER BY sampled_at DESC LIMIT 1',
      [host],
    );
    expect(row.rows[0].data).toMatchObject({ uptimeSeconds: 3600, intervalSeconds: 1, system: { arch: 'x64' } });

    const target = await store.getTarget(`host:${host}`);
    expect(target).toMatchObject({ kind: TargetKind.Host, name: host });
    expect(Object.keys(target?.locations ?? {})).toEqual(['lab-2']);
    const listed = await store.listTargets({ kind: [TargetKind.Host] }, 100);
    expect(listed.items.map((t) => t.id)).toContain(`host:${host}`);
  });

  it('rolls minutes up (avg/max per series and device), idempotently under redelivery, corrected by late samples', async () => {
    // Both minutes: a run may have rolled minute M up before the sample of M + 1 min was stored, and the next run not
    // have come yet (a loaded machine).
    await waitFor(
      async () =>
        (await rollup(host, M, 'cpu_pct'))?.count === 3 && (await rollup(host, M + 60_000, 'cpu_pct')) !== null,
      { description: 'minutes M and M + 1 rolled up', timeoutMs: 30_000 },
    );
    expect(await rollup(host, M, 'cpu_pct')).toEqual({ count: 3, avg: 30, max: 60 });
    expect(await rollup(host, M + 60_000, 'cpu_pct')).toEqual({ count: 1, avg: 50, max: 50 });
    expect(await rollup(host, M, 'disk_used_bytes', '/')).toEqual({ count: 3, avg: 30e9, max: 60e9 });
    expect(await rollup(host, M, 'disk_used_bytes', ODD_MOUNT)).toEqual({
      count: 3,
      avg: Number.MAX_VALUE,
      max: Number.MAX_VALUE,
    });
    // A null rate (the first sample's) is no point, never a zero.
    expect(await rollup(host, M, 'net_rx_bps', 'eth0')).toEqual({ count: 2, avg: 4000, max: 6000 });
    expect(await rollup(host, M, 'gpu_util_pct', '0')).toEqual({ count: 3, avg: 30, max: 60 });
    expect(await rollup(host, M, 'gpu_temp_c', '0')).toEqual({ count: 3, avg: 43, max: 46 });
    expect(await rollup(host, M, 'gpu_power_w', '0')).toBeNull();
    expect(await rollup(host, M, 'mem_used_bytes')).toEqual({ count: 3, avg: 30e8, max: 60e8 });

    // Redelivery of the first sample: no second row, the minute unchanged.
    await publish(sample(host, M + 5_000, 10), firstId);
    // A sample of a minute that has not ended (a clock ahead): rolled up only once it has.
    const future = Math.floor(Date.now() / 60_000) * 60_000 + 10 * 60_000;
    await publish(sample('lab-host-ahead', future + 1000, 1));
    // A late sample in minute M (a spooled one): the minute is recomputed with it.
    await publish(sample(host, M + 50_000, 90));
    await waitFor(async () => (await rollup(host, M, 'cpu_pct'))?.count === 4, {
      description: 'minute M recomputed with the late sample',
      timeoutMs: 30_000,
    });
    // The sample ahead may be on another shard than the late one, committed after it: its row and mark go together.
    await waitFor(
      async () =>
        (await count(site.pg, "SELECT count(*) AS n FROM host_metrics WHERE host_id = 'lab-host-ahead'")) === 1,
      { description: 'the sample ahead stored' },
    );
    expect(await count(site.pg, 'SELECT count(*) AS n FROM host_metrics WHERE host_id = $1', [host])).toBe(5);
    expect(await rollup(host, M, 'cpu_pct')).toEqual({ count: 4, avg: 45, max: 90 });
    expect(await rollup('lab-host-ahead', future, 'cpu_pct')).toBeNull();
    expect(await count(site.pg, "SELECT count(*) AS n FROM host_rollup_dirty WHERE host_id = 'lab-host-ahead'")).toBe(
      1,
    );
    // Recomputing again (a second pass, a crash before the mark was cleared) changes nothing.
    await site.pg.query('INSERT INTO host_rollup_dirty (host_id, bucket) VALUES ($1, $2)', [
      host,
      new Date(M).toISOString(),
    ]);
    await waitFor(
      async () =>
        (await count(site.pg, 'SELECT count(*) AS n FROM host_rollup_dirty WHERE host_id = $1', [host])) === 0,
      { description: 'marks consumed' },
    );
    expect(await rollup(host, M, 'cpu_pct')).toEqual({ count: 4, avg: 45, max: 90 });
    // The late sample is older than the latest: live state keeps the newest.
    const json = await store.getHostMetrics(host);
    expect((JSON.parse(json as string) as HostMetricsPayload).cpu.usagePct).toBe(50);
  });

  it('turns the host STALE when its samples stop (2 intervals + slack), UP again when they return', async () => {
    const id = 'lab-host-live';
    const start = Date.now();
    await publish(sample(id, start, 5));
    await waitFor(async () => (await store.getTarget(`host:${id}`))?.status === TargetStatus.Up, {
      description: 'host UP',
    });
    const stale = await waitFor(
      async () => {
        const t = await store.getTarget(`host:${id}`);
        return t?.status === TargetStatus.Stale ? t : null;
      },
      { description: 'host STALE after its samples stop', timeoutMs: 40_000 },
    );
    // Not before the deadline: sampled at `start`, 2 × 1 s + 5 s slack.
    expect(Date.now() - start).toBeGreaterThanOrEqual(7_000);
    expect(stale.locations['lab-2'].status).toBe(TargetStatus.Stale);
    const events = await site.pg.query<{ to_status: string; reason: string }>(
      'SELECT to_status, reason FROM status_events WHERE target_id = $1 AND location IS NOT NULL ORDER BY sequence',
      [`host:${id}`],
    );
    expect(events.rows.map((e) => e.to_status)).toEqual(['UP', 'STALE']);
    expect(events.rows[1].reason).toMatch(/no metrics within 2 × 1s/);

    await publish(sample(id, Date.now(), 6));
    await waitFor(async () => (await store.getTarget(`host:${id}`))?.status === TargetStatus.Up, {
      description: 'host UP again',
    });
  });

  it('a rebuild of a flushed Redis restores the hosts and their latest samples', async () => {
    await flushPrefix(site.redis, site.redisPrefix);
    // Rebuilt by this call, or already by the sweeper's rebuild job (every SWEEP_INTERVAL_MS), which may run between
    // the flush and the call (check() then finds nothing missing).
    await app.get(LiveStateBoot).check();
    await waitFor(async () => (await store.getHostMetrics(host)) !== null, { description: 'live state rebuilt' });
    const json = await store.getHostMetrics(host);
    expect(JSON.parse(json as string)).toMatchObject({
      hostId: host,
      sampledAt: new Date(M + 70_000).toISOString(),
      cpu: { usagePct: 50 },
      disks: [{ mount: '/' }, { mount: ODD_MOUNT, usedBytes: Number.MAX_VALUE }],
      system: { hostname: host },
    });
    expect(await store.getTarget(`host:${host}`)).toMatchObject({ kind: TargetKind.Host, name: host });
    expect(await store.getHostMetrics('lab-host-live')).not.toBeNull();
  });

  it('retention trims raw samples past the raw window and host rollups past the rollup window', async () => {
    const old = Date.now() - 200 * 86_400_000;
    await publish(sample('lab-host-old', old, 1));
    await waitFor(async () => (await rollup('lab-host-old', Math.floor(old / 60_000) * 60_000, 'cpu_pct')) !== null, {
      description: 'old rollup',
      timeoutMs: 30_000,
    });
    // Past the raw window, inside the rollup window: raw rows go, rollups stay.
    const mid = Date.now() - midDays() * 86_400_000;
    await publish(sample('lab-host-mid', mid, 7));
    await waitFor(async () => (await rollup('lab-host-mid', Math.floor(mid / 60_000) * 60_000, 'cpu_pct')) !== null, {
      description: 'mid rollup',
      timeoutMs: 30_000,
    });
    const deleted = await app.get(HistoryMaintenance).applyRetention();
    expect(deleted.host_metrics).toBeGreaterThanOrEqual(1);
    expect(deleted.host_rollups_1m).toBeGreaterThanOrEqual(1);
    expect(await count(site.pg, "SELECT count(*) AS n FROM host_metrics WHERE host_id = 'lab-host-old'")).toBe(0);
    expect(await count(site.pg, "SELECT count(*) AS n FROM host_rollups_1m WHERE host_id = 'lab-host-old'")).toBe(0);
    // Inside both windows: kept.
    expect(
      await count(site.pg, 'SELECT count(*) AS n FROM host_rollups_1m WHERE host_id = $1', [host]),
    ).toBeGreaterThan(0);
    expect(await count(site.pg, 'SELECT count(*) AS n FROM host_metrics WHERE host_id = $1', [host])).toBe(5);
    expect(await count(site.pg, "SELECT count(*) AS n FROM host_metrics WHERE host_id = 'lab-host-mid'")).toBe(0);
    expect(await rollup('lab-host-mid', Math.floor(mid / 60_000) * 60_000, 'cpu_pct')).toEqual({
      count: 1,
      avg: 7,
      max: 7,
    });
  });

  it('a late sample in a minute past the raw window does not shrink its rollup to that one sample', async () => {
    const id = 'lab-host-late';
    const minute = Math.floor((Date.now() - midDays() * 86_400_000) / 60_000) * 60_000;
    for (const [s, cpu] of [
      [5_000, 10],
      [20_000, 20],
      [40_000, 30],
    ])
      await publish(sample(id, minute + s, cpu));
    const full = { count: 3, avg: 20, max: 30 };
    await waitFor(async () => (await rollup(id, minute, 'cpu_pct'))?.count === 3, {
      description: 'rollup of 3 samples',
      timeoutMs: 30_000,
    });
    await app.get(HistoryMaintenance).applyRetention();
    const rawRows = () => count(site.pg, 'SELECT count(*) AS n FROM host_metrics WHERE host_id = $1', [id]);
    expect(await rawRows()).toBe(0);
    expect(await rollup(id, minute, 'cpu_pct')).toEqual(full);

    // A spooled sample of that minute arrives late: stored raw (retention prunes it), its mark cleared, the rollup kept.
    await publish(sample(id, minute + 50_000, 90));
    await waitFor(async () => (await rawRows()) === 1, { description: 'late raw row', timeoutMs: 30_000 });
    await waitFor(
      async () => (await count(site.pg, 'SELECT count(*) AS n FROM host_rollup_dirty WHERE host_id = $1', [id])) === 0,
      { description: 'late minute mark cleared', timeoutMs: 30_000 },
    );
    expect(await rollup(id, minute, 'cpu_pct')).toEqual(full);
    expect(await rollup(id, minute, 'gpu_util_pct', '0')).toEqual(full);
  });
});
