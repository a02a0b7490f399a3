import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import {
  TargetKind,
  TargetStatus as S,
  type ApiErrorBody,
  type HostDetailView,
  type HostListResponse,
  type HostMetricsPayload,
  type HostMetricsResponse,
  listHostsQuerySchema,
} from '@fleetwatch/contracts';
import { LiveStateStore, type LocationRecord, type TargetWrite } from '@fleetwatch/live-state';
import {
  createPrismaClient,
  HistoryRepository,
  HostHistoryRepository,
  runInTransaction,
  type DatabaseClient,
} from '@fleetwatch/persistence';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import { findHosts, HOST_SEARCH_CHUNK, HOST_SYSTEM_TTL_MS, HostSystems } from './host-list';
import * as testing from '@fleetwatch/testing';

// Hosts on the gateway (issue 16): live state and host history as the aggregator leaves them
// (written here through the same LiveStateStore and repositories, on real Redis and
// Postgres), read back through the REST routes and /metrics (checked by promtool).

let gw: GatewayHarness;
let token: string;
let db: DatabaseClient;
const NOW = Date.now();
/** Two hours ago, at the start of a 2-minute step (the step of a 1440-minute window). */
const OLD = Math.floor((NOW - 2 * 3_600_000) / 120_000) * 120_000 + 1000;
const ODD_MOUNT = '/mnt/odd "name"\\x\nnext';
const ODD_HOST = 'rack 1/"gpu"\\node ✓';

function hostTarget(hostId: string, status: S, location = 'lab-2'): TargetWrite {
  const locs: Record<string, LocationRecord> = {
    [location]: {
      status,
      observedAt: NOW - 1000,
      lastSeen: NOW - 1000,
      latencyMs: null,
      detail: null,
      lifecycle: null,
    },
  };
  return {
    id: `host:${hostId}`,
    kind: TargetKind.Host,
    name: hostId,
    status,
    previousStatus: null,
    since: NOW - 60_000,
    lastSeen: NOW - 1000,
    lastLatencyMs: null,
    lifecycle: null,
    tags: [],
    labels: {},
    seq: 1,
    locations: locs,
  };
}

function sample(hostId: string, at: number, cpu: number): HostMetricsPayload {
  return {
    hostId,
    location: 'lab-2',
    sampledAt: new Date(at).toISOString(),
    intervalSeconds: 5,
    cpu: { usagePct: cpu, cores: 8, load1: 1.5, load5: 1, load15: 0.5, perCorePct: [cpu, cpu] },
    memory: { totalBytes: 16e9, usedBytes: cpu * 1e8, swapTotalBytes: 2e9, swapUsedBytes: 1e8 },
    disks: [
      { mount: '/', totalBytes: 1e11, usedBytes: 4e10, readBytesPerSec: 100, writeBytesPerSec: 200 },
      { mount: ODD_MOUNT, totalBytes: 2e11, usedBytes: 1e11 },
    ],
    network: [
      { iface: 'eth0', rxBytesPerSec: 1000, txBytesPerSec: 500 },
      { iface: 'wlan"0', rxBytesPerSec: null, txBytesPerSec: null },
    ],
    gpus: [
      {
        index: 0,
        name: 'NVIDIA H200',
        utilizationPct: cpu,
        memoryUsedBytes: 2e9,
        memoryTotalBytes: 1.4e11,
        temperatureC: 61,
        powerW: 350.5,
        fanPct: null,
      },
    ],
    uptimeSeconds: 86_400,
    system: { hostname: 'gpu-1.lab', platform: 'linux', kernel: '6.1.0', arch: 'x64', gpuDriverVersion: '550.54' },
  };
}

const get = <T>(path: string) => gw.request<T>('GET', path, { token });
const enc = encodeURIComponent;

beforeAll(async () => {
  gw = await startGateway(testing, 'hosts');
  token = await gw.login('admin', ADMIN_PASSWORD);
  db = createPrismaClient(gw.database.databaseUrl);
  await gw.live.writeTargets([
    hostTarget('gpu-1', S.Up),
    hostTarget('old-box', S.Stale, 'eu-west-1'),
    hostTarget(ODD_HOST, S.Up),
    // Not a host: never listed.
    { ...hostTarget('x', S.Up), id: 'instance:x', kind: TargetKind.Instance },
  ]);
  await gw.live.setHostMetrics('gpu-1', JSON.stringify(sample('gpu-1', NOW - 2000, 42.5)), NOW - 2000);
  await gw.live.setHostMetrics('old-box', JSON.stringify(sample('old-box', NOW - 3_600_000, 5)), NOW - 3_600_000);
  await gw.live.setHostMetrics(ODD_HOST, JSON.stringify(sample(ODD_HOST, NOW - 1000, 7)), NOW - 1000);

  // History: raw samples within the last hour and two hours ago, rolled up as the aggregator's job does.
  const history = new HistoryRepository(db);
  const rows = [
    [NOW - 5 * 60_000, 20],
    [NOW - 3 * 60_000, 40],
    [OLD, 10],
    [OLD + 1000, 30],
  ].map(([at, cpu]) => {
    const p = sample('gpu-1', at, cpu);
    return {
      messageId: randomUUID(),
      hostId: p.hostId,
      location: p.location,
      sampledAt: at,
      cpuPct: cpu,
      load1: p.cpu.load1,
      memUsedBytes: p.memory.usedBytes,
      memTotalBytes: p.memory.totalBytes,
      data: { ...p },
    };
  });
  await runInTransaction(db, (tx) => history.insertHostMetrics(tx, rows));
  await new HostHistoryRepository(db).recomputeDirtyRollups();
});
afterAll(async () => {
  await db?.$disconnect();
  await gw?.close();
});

describe('GET /api/v1/hosts', () => {
  it('needs a session', async () => {
    expect((await gw.request('GET', '/api/v1/hosts')).status).toBe(401);
    expect((await gw.request('GET', '/api/v1/hosts/gpu-1/metrics')).status).toBe(401);
  });

  it('lists every host with its status and the summary of its latest sample', async () => {
    const res = await get<HostListResponse>('/api/v1/hosts');
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(3);
    expect(res.body.items.map((h) => h.id)).toEqual(['gpu-1', 'old-box', ODD_HOST]);
    const gpu = res.body.items[0];
    expect(gpu).toEqual({
      id: 'gpu-1',
      targetId: 'host:gpu-1',
      name: 'gpu-1',
      status: 'UP',
      locations: ['lab-2'],
      lastSeen: new Date(NOW - 1000).toISOString(),
      since: new Date(NOW - 60_000).toISOString(),
      system: sample('gpu-1', 0, 0).system,
      lastSample: {
        sampledAt: new Date(NOW - 2000).toISOString(),
        cpuPct: 42.5,
        cores: 8,
        load1: 1.5,
        memoryUsedBytes: 42.5e8,
        memoryTotalBytes: 16e9,
        swapUsedBytes: 1e8,
        swapTotalBytes: 2e9,
        diskUsedBytes: 1.4e11,
        diskTotalBytes: 3e11,
        networkRxBytesPerSec: 1000,
        networkTxBytesPerSec: 500,
        gpuCount: 1,
        gpuMaxUtilizationPct: 42.5,
        gpuMaxTemperatureC: 61,
        gpusMissing: null,
      },
      // One collector reports it (the aggregator marked no host-id conflict).
      conflict: null,
    });
    expect(res.body.items[1]).toMatchObject({ id: 'old-box', status: 'STALE', locations: ['eu-west-1'] });
  });

  it('pages with limit and cursor', async () => {
    const first = await get<HostListResponse>('/api/v1/hosts?limit=2');
    expect(first.body.items.map((h) => h.id)).toEqual(['gpu-1', 'old-box']);
    expect(first.body.nextCursor).toBe('old-box');
    const second = await get<HostListResponse>(`/api/v1/hosts?limit=2&cursor=${enc('old-box')}`);
    expect(second.body.items.map((h) => h.id)).toEqual([ODD_HOST]);
    expect(second.body.nextCursor).toBeNull();
  });
});

describe('GET /api/v1/hosts/{id}', () => {
  it('answers the latest full sample, system information and the target', async () => {
    const res = await get<HostDetailView>('/api/v1/hosts/gpu-1');
    expect(res.status).toBe(200);
    expect(res.body.sample).toEqual(sample('gpu-1', NOW - 2000, 42.5));
    expect(res.body.system).toEqual(sample('gpu-1', 0, 0).system);
    expect(res.body.target).toMatchObject({ id: 'host:gpu-1', kind: 'host', status: 'UP' });
  });

  it('a GPU fallen off the bus: the sample lists it (missingGpus) and the list counts it (gpusMissing)', async () => {
    const lost = {
      ...sample('gpu-1', NOW - 2000, 42.5),
      missingGpus: [
        {
          index: 1,
          uuid: 'GPU-1c9b7e45-6a0f-3d82-b7c1-9e4a2f5d8b03',
          name: 'NVIDIA H200',
          busId: '00000000:5D:00.0',
          since: new Date(NOW - 60_000).toISOString(),
          problem: 'Unable to determine the device handle for GPU 0000:5D:00.0: GPU is lost.',
        },
      ],
    };
    // Written over the host's sample at its time (a later one would stay: live state never moves a sample back).
    expect(await gw.live.setHostMetrics('gpu-1', JSON.stringify(lost), NOW - 2000)).toBe(true);
    try {
      const detail = await get<HostDetailView>('/api/v1/hosts/gpu-1');
      expect(detail.body.sample?.missingGpus).toEqual(lost.missingGpus);
      const list = await get<HostListResponse>('/api/v1/hosts?limit=1');
      expect(list.body.items[0].lastSample).toMatchObject({ gpuCount: 1, gpusMissing: 1 });
    } finally {
      expect(await gw.live.setHostMetrics('gpu-1', JSON.stringify(sample('gpu-1', NOW - 2000, 42.5)), NOW - 2000)).toBe(
        true,
      );
    }
  });

  it('a host id two collectors report: the aggregator’s mark (a key of its own) is served as `conflict`', async () => {
    const conflict = { reporters: 2, since: new Date(NOW - 30_000).toISOString() };
    const mark = { hostId: 'gpu-1', op: 'raise', mark: { reporters: 2, since: NOW - 30_000 } } as const;
    await gw.live.writeHostConflicts([mark], 'aggregator-1', 60_000);
    try {
      const detail = await get<HostDetailView>('/api/v1/hosts/gpu-1');
      expect(detail.body.conflict).toEqual(conflict);
      // The sample stays the collector's.
      expect(detail.body.sample).toEqual(sample('gpu-1', NOW - 2000, 42.5));
      const list = await get<HostListResponse>('/api/v1/hosts?limit=1');
      expect(list.body.items[0].conflict).toEqual(conflict);
    } finally {
      await gw.live.writeHostConflicts([{ hostId: 'gpu-1', op: 'drop' }], 'aggregator-1', 60_000);
    }
    expect((await get<HostDetailView>('/api/v1/hosts/gpu-1')).body.conflict).toBeNull();
    expect((await get<HostListResponse>('/api/v1/hosts?limit=1')).body.items[0].conflict).toBeNull();
  });

  it('a mark an aggregator of before left in the live sample is neither served nor kept in the sample', async () => {
    const marked = {
      ...sample('gpu-1', NOW - 2000, 42.5),
      conflict: { reporters: 2, since: new Date(NOW).toISOString() },
    };
    expect(await gw.live.setHostMetrics('gpu-1', JSON.stringify(marked), NOW - 2000)).toBe(true);
    try {
      const detail = await get<HostDetailView>('/api/v1/hosts/gpu-1');
      expect(detail.body.conflict).toBeNull();
      expect(detail.body.sample).toEqual(sample('gpu-1', NOW - 2000, 42.5));
      const list = await get<HostListResponse>('/api/v1/hosts?limit=1');
      expect(list.body.items[0].conflict).toBeNull();
      expect(list.body.items[0].lastSample?.cpuPct).toBe(42.5);
    } finally {
      expect(await gw.live.setHostMetrics('gpu-1', JSON.stringify(sample('gpu-1', NOW - 2000, 42.5)), NOW - 2000)).toBe(
        true,
      );
    }
  });

  it('finds ids with spaces, slashes, quotes and backslashes (URL-encoded)', async () => {
    const res = await get<HostDetailView>(`/api/v1/hosts/${enc(ODD_HOST)}`);
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(ODD_HOST);
    expect(res.body.sample?.cpu.usagePct).toBe(7);
  });

  it('falls back to the latest raw row when live state lost the sample', async () => {
    await gw.redis.del(`host:gpu-1:metrics`);
    const res = await get<HostDetailView>('/api/v1/hosts/gpu-1');
    expect(res.body.sample?.sampledAt).toBe(new Date(NOW - 3 * 60_000).toISOString());
    await gw.live.setHostMetrics('gpu-1', JSON.stringify(sample('gpu-1', NOW - 2000, 42.5)), NOW - 2000);
  });

  it('404 for an unknown host, 400 naming `id` for one no store could hold', async () => {
    const res = await get<ApiErrorBody>('/api/v1/hosts/nope');
    expect(res.status).toBe(404);
    expect(res.body.error.message).toContain('nope');
    expect((await get('/api/v1/hosts/x')).status).toBe(404); // an instance, not a host
    const nul = await get<ApiErrorBody>('/api/v1/hosts/a%00b');
    expect(nul.status).toBe(400);
    expect(nul.body.error.issues?.map((i) => i.path)).toEqual(['id']);
    const long = await get<ApiErrorBody>(`/api/v1/hosts/${'h'.repeat(257)}`);
    expect(long.status).toBe(400);
    expect(long.body.error.issues?.map((i) => i.path)).toEqual(['id']);
    // The longest id the contract allows, of astral characters (~1.5 KB URL-encoded), is routed.
    expect((await get<ApiErrorBody>(`/api/v1/hosts/${enc('𝄞'.repeat(128))}`)).status).toBe(404);
  });
});

describe('GET /api/v1/hosts/{id}/metrics', () => {
  const series = (res: HostMetricsResponse, name: string, device: string | null = null) =>
    res.series.find((s) => s.series === name && s.device === device);

  it('short windows: every raw sample a point, per series and device', async () => {
    const res = await get<HostMetricsResponse>('/api/v1/hosts/gpu-1/metrics?minutes=30');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ hostId: 'gpu-1', minutes: 30, resolution: 'raw', stepSeconds: null });
    expect(series(res.body, 'cpu_pct')?.points).toEqual([
      { at: new Date(NOW - 5 * 60_000).toISOString(), avg: 20, max: 20, count: 1 },
      { at: new Date(NOW - 3 * 60_000).toISOString(), avg: 40, max: 40, count: 1 },
    ]);
    expect(series(res.body, 'disk_used_bytes', ODD_MOUNT)?.points.map((p) => p.avg)).toEqual([1e11, 1e11]);
    expect(series(res.body, 'net_rx_bps', 'eth0')?.points).toHaveLength(2);
    expect(series(res.body, 'net_rx_bps', 'wlan"0')).toBeUndefined(); // null rates are no points
    expect(series(res.body, 'gpu_temp_c', '0')?.points.map((p) => p.max)).toEqual([61, 61]);
    expect(series(res.body, 'gpu_power_w', '0')?.points.map((p) => p.avg)).toEqual([350.5, 350.5]);
  });

  it('long windows: 1-minute rollups merged into steps (avg weighted by samples, max of maxima)', async () => {
    const res = await get<HostMetricsResponse>('/api/v1/hosts/gpu-1/metrics?minutes=1440');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resolution: 'rollup', stepSeconds: 120 });
    const cpu = series(res.body, 'cpu_pct')?.points ?? [];
    // The two samples two hours ago share a step (they are a second apart); the two recent ones may share one.
    expect(cpu.find((p) => p.count === 2 && p.max === 30)).toMatchObject({ avg: 20 });
    expect(cpu.reduce((n, p) => n + p.count, 0)).toBe(4);
    expect(Math.max(...cpu.map((p) => p.max))).toBe(40);
  });

  it('validates minutes with a 400 naming the field; 404 for an unknown host', async () => {
    for (const q of ['minutes=abc', 'minutes=0', 'minutes=1.5', `minutes=${60 * 24 * 90 + 1}`]) {
      const res = await get<ApiErrorBody>(`/api/v1/hosts/gpu-1/metrics?${q}`);
      expect(res.status).toBe(400);
      expect(res.body.error.issues?.map((i) => i.path)).toEqual(['minutes']);
    }
    expect((await get<ApiErrorBody>('/api/v1/hosts/nope/metrics?minutes=60')).status).toBe(404);
  });
});

describe('GET /metrics: host series', () => {
  const PROMTOOL_MISSING =
    'promtool is not installed, so `promtool check metrics` cannot run: install it with ' +
    '`apt-get install -y --no-install-recommends prometheus` (the CI script does).';
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  let text: string;

  beforeAll(async () => {
    await new Promise((r) => setTimeout(r, 1100)); // past the 1 s snapshot shared by close scrapes
    const res = await gw.request<string>('GET', '/metrics');
    expect(res.status).toBe(200);
    text = res.text;
  });

  it('exposes CPU, memory, swap, disk, network and GPU series with host and device/mount/iface labels', () => {
    const lines = text.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'fleetwatch_host_up{host="gpu-1",location="lab-2"} 1',
        'fleetwatch_host_up{host="old-box",location="eu-west-1"} 0',
        'fleetwatch_host_cpu_ratio{host="gpu-1"} 0.425',
        'fleetwatch_host_memory_used_bytes{host="gpu-1"} 4250000000',
        'fleetwatch_host_memory_total_bytes{host="gpu-1"} 16000000000',
        'fleetwatch_host_swap_used_bytes{host="gpu-1"} 100000000',
        'fleetwatch_host_disk_used_bytes{host="gpu-1",mount="/"} 40000000000',
        `fleetwatch_host_disk_total_bytes{host="gpu-1",mount="${esc(ODD_MOUNT)}"} 200000000000`,
        'fleetwatch_host_network_receive_bytes_per_second{host="gpu-1",iface="eth0"} 1000',
        'fleetwatch_host_network_transmit_bytes_per_second{host="gpu-1",iface="eth0"} 500',
        'fleetwatch_host_gpu_utilization_ratio{host="gpu-1",device="0"} 0.425',
        'fleetwatch_host_gpu_memory_used_bytes{host="gpu-1",device="0"} 2000000000',
        'fleetwatch_host_gpu_temperature_celsius{host="gpu-1",device="0"} 61',
        'fleetwatch_host_gpu_power_watts{host="gpu-1",device="0"} 350.5',
        `fleetwatch_host_cpu_ratio{host="${esc(ODD_HOST)}"} 0.07`,
      ]),
    );
    // A rate not known yet is no series (never a made-up zero); a STALE host keeps only host_up.
    expect(text).not.toContain('iface="wlan\\"0"');
    expect(lines.filter((l) => l.includes('host="old-box"'))).toEqual([
      'fleetwatch_host_up{host="old-box",location="eu-west-1"} 0',
    ]);
    // No raw newline inside any sample line.
    for (const line of lines) expect(line).toMatch(/^(#.*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+|)$/);
  });

  it('passes `promtool check metrics`', () => {
    const which = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
    if (which.error) throw new Error(PROMTOOL_MISSING);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
    expect({ status: check.status, output: `${check.stdout}${check.stderr}`.trim() }).toEqual({
      status: 0,
      output: '',
    });
  });
});

describe('hosts routes: any id or cursor in the URL is answered, never with a 5xx', () => {
  /** A path segment as a client may send it: percent-encoded bytes (any, so invalid UTF-8 too), raw ASCII, broken escapes. */
  const piece = fc.oneof(
    fc.integer({ min: 0, max: 255 }).map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`),
    fc.constantFrom(
      'a',
      'Z',
      '0',
      '-',
      '.',
      '_',
      '~',
      '%',
      '%G1',
      '%E0%A4',
      '%ED%A0%80',
      '%F4%90%80%80',
      '%C0%AF',
      '%00',
    ),
    fc.constantFrom(
      ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).filter((c) => !'/?#'.includes(c)),
    ),
  );
  const segment = fc.array(piece, { minLength: 1, maxLength: 40 }).map((ps) => ps.join(''));

  it('GET /api/v1/hosts/{id}, /{id}/metrics and ?cursor= answer 200, 400 or 404', async () => {
    await fc.assert(
      fc.asyncProperty(segment, fc.constantFrom(1, 60, 1440), async (seg, minutes) => {
        for (const path of [
          `/api/v1/hosts/${seg}`,
          `/api/v1/hosts/${seg}/metrics?minutes=${minutes}`,
          `/api/v1/hosts?cursor=${seg}`,
          `/api/v1/hosts?q=${seg}`,
        ]) {
          const res = await get<ApiErrorBody>(path);
          expect({ path, status: res.status, ok: [200, 400, 404].includes(res.status) }).toEqual({
            path,
            status: res.status,
            ok: true,
          });
        }
      }),
      { numRuns: Number(process.env.HOST_PROPERTY_RUNS ?? 150) },
    );
  });
});

describe('GET /api/v1/hosts filtered: status, location, q', () => {
  // Last in the file: the hosts written here would change the counts above.
  const os = (hostId: string, system: HostMetricsPayload['system']) =>
    JSON.stringify({ ...sample(hostId, NOW - 1000, 3), system });
  beforeAll(async () => {
    await gw.live.writeTargets([
      hostTarget('db-7', S.Up),
      hostTarget('mac-1', S.Stale, 'eu-west-1'),
      hostTarget('bare', S.Up), // no sample yet: no system to search
    ]);
    await gw.live.setHostMetrics(
      'db-7',
      os('db-7', { hostname: 'db-7.prod.example', platform: 'linux', distro: 'Debian', release: '12' }),
      NOW - 1000,
    );
    await gw.live.setHostMetrics('mac-1', os('mac-1', { hostname: 'mac-1', platform: 'darwin' }), NOW - 1000);
  });
  const ids = async (query: string) => {
    const res = await get<HostListResponse>(`/api/v1/hosts?${query}`);
    expect(res.status).toBe(200);
    return { ids: res.body.items.map((h) => h.id), total: res.body.total, next: res.body.nextCursor };
  };

  it('q: in the id or name, hostname, OS or kernel, any case; total counts the matches', async () => {
    expect(await ids('q=OLD-B')).toEqual({ ids: ['old-box'], total: 1, next: null });
    // gpu-1's id, and the hostname the samples of gpu-1, old-box and the odd host carry.
    expect(await ids('q=GPU-1')).toEqual({ ids: ['gpu-1', 'old-box', ODD_HOST], total: 3, next: null });
    expect(await ids(`q=${enc('prod.EXAMPLE')}`)).toEqual({ ids: ['db-7'], total: 1, next: null });
    // As the System column shows it: distro and release.
    expect(await ids(`q=${enc(' debian 12 ')}`)).toEqual({ ids: ['db-7'], total: 1, next: null });
    expect(await ids('q=Darwin')).toEqual({ ids: ['mac-1'], total: 1, next: null });
    expect(await ids('q=6.1.0')).toEqual({ ids: ['gpu-1', 'old-box', ODD_HOST], total: 3, next: null });
    expect(await ids(`q=${enc('"gpu"\\node')}`)).toEqual({ ids: [ODD_HOST], total: 1, next: null });
    expect(await ids('q=bare')).toEqual({ ids: ['bare'], total: 1, next: null });
    expect(await ids('q=nothing-like-it')).toEqual({ ids: [], total: 0, next: null });
    // Empty or blank: every host.
    expect((await ids('q=%20')).total).toBe(6);
  });

  it('status: an OR list in any case; location: an exact name; all filters together', async () => {
    expect(await ids('status=stale')).toEqual({ ids: ['mac-1', 'old-box'], total: 2, next: null });
    expect((await ids('status=UP,stale')).total).toBe(6);
    expect(await ids('location=eu-west-1')).toEqual({ ids: ['mac-1', 'old-box'], total: 2, next: null });
    expect((await ids('location=eu-west')).total).toBe(0);
    expect(await ids('status=UP&location=lab-2&q=linux')).toEqual({
      ids: ['db-7', 'gpu-1', ODD_HOST],
      total: 3,
      next: null,
    });
    expect(await ids('status=STALE&q=linux')).toEqual({ ids: ['old-box'], total: 1, next: null });
  });

  it('pages a search by id with limit and cursor, total the same on every page', async () => {
    expect(await ids('q=linux&limit=2')).toEqual({ ids: ['db-7', 'gpu-1'], total: 4, next: 'gpu-1' });
    expect(await ids('q=linux&limit=2&cursor=gpu-1')).toEqual({ ids: ['old-box', ODD_HOST], total: 4, next: null });
    // A cursor that is no host (one gone since): the matches after it.
    expect(await ids('q=linux&limit=2&cursor=h')).toEqual({ ids: ['old-box', ODD_HOST], total: 4, next: null });
  });

  it('a search reads the inventory in chunks: the same page whatever the chunk size', async () => {
    for (const query of ['q=linux&limit=2', 'q=linux&limit=2&cursor=gpu-1', 'q=x64&limit=1&cursor=db-7', 'q=a']) {
      const parsed = listHostsQuerySchema.parse(Object.fromEntries(new URLSearchParams(query)));
      const whole = await findHosts(gw.live, parsed);
      for (const chunk of [1, 2, 3]) {
        const got = await findHosts(gw.live, parsed, new HostSystems(gw.live, { chunkSize: chunk }));
        expect({ query, chunk, ids: got.items.map((t) => t.id), next: got.nextCursor, total: got.total }).toEqual({
          query,
          chunk,
          ids: whole.items.map((t) => t.id),
          next: whole.nextCursor,
          total: whole.total,
        });
      }
    }
    // And the page carries its hosts' samples (the list's summaries come from them).
    const page = await get<HostListResponse>('/api/v1/hosts?q=debian');
    expect(page.body.items[0]?.system?.distro).toBe('Debian');
    expect(page.body.items[0]?.lastSample?.cpuPct).toBe(3);
  });

  it('documents the filters in the OpenAPI document', async () => {
    const doc = await gw.request<{
      paths: Record<string, { get?: { parameters?: { name: string; schema?: { description?: string } }[] } }>;
    }>('GET', '/api/docs/openapi.json');
    const params = doc.body.paths['/api/v1/hosts']?.get?.parameters ?? [];
    expect(params.map((p) => p.name).sort()).toEqual(['cursor', 'limit', 'location', 'q', 'status']);
    expect(params.find((p) => p.name === 'q')?.schema?.description).toMatch(/hostname/);
  });

  it('400 naming the parameter for an unknown status or a search too long', async () => {
    const bogus = await get<ApiErrorBody>('/api/v1/hosts?status=UP,BOGUS');
    expect(bogus.status).toBe(400);
    expect(bogus.body.error.issues?.map((i) => i.path)).toEqual(['status.1']);
    const long = await get<ApiErrorBody>(`/api/v1/hosts?q=${'x'.repeat(201)}`);
    expect(long.status).toBe(400);
    expect(long.body.error.issues?.map((i) => i.path)).toEqual(['q']);
  });
});

describe('GET /api/v1/hosts?q=: what searches cost', () => {
  // A search matches what each candidate's latest sample says it runs: 5,000 hosts are ~10 MB read from Redis and
  // parsed, ~1 s of the gateway on a loaded 2-core box. Read per request, every viewer's search (refreshed every
  // 10 s) cost that again, unbounded; and 1,000 samples a pipeline held the event loop ~0.2 s at a time.
  const N = 600;
  const hostId = (i: number) => `fleet-${String(i).padStart(4, '0')}`;
  beforeAll(async () => {
    await gw.live.writeTargets(Array.from({ length: N }, (_, i) => hostTarget(hostId(i), S.Up, 'dc-9')));
    await gw.live.setHostMetricsMany(
      Array.from({ length: N }, (_, i) => ({
        hostId: hostId(i),
        sampledAt: NOW - 1000,
        json: JSON.stringify({
          ...sample(hostId(i), NOW - 1000, 3),
          system: { hostname: `n${i}.dc9.example`, platform: 'linux', distro: i % 2 ? 'Debian' : 'Rocky' },
        }),
      })),
    );
  });
  const search = async (q: string) => {
    const res = await get<HostListResponse>(`/api/v1/hosts?location=dc-9&limit=1&q=${enc(q)}`);
    expect(res.status).toBe(200);
    return res.body.total;
  };

  it('viewers searching at once and again read each host`s sample once, a bounded chunk at a time', async () => {
    const read = jest.spyOn(gw.running.app.get(LiveStateStore, { strict: false }), 'getHostMetricsMany');
    try {
      const qs = ['debian', 'rocky', 'DC9.example', 'Debian', 'nothing-like-it', 'n1'];
      // n1, n10–n19, n100–n199.
      const totals = [300, 300, N, 300, 0, 111];
      expect(await Promise.all(qs.map(search))).toEqual(totals);
      // Their next refresh.
      for (const [i, q] of qs.entries()) expect(await search(q)).toBe(totals[i]);
      const asked = read.mock.calls.map(([ids]) => ids.length);
      expect(Math.max(...asked)).toBeLessThanOrEqual(HOST_SEARCH_CHUNK);
      // Each host's sample once for the twelve searches, and each answer's page (limit=1).
      expect(asked.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(N + 2 * qs.length);
    } finally {
      read.mockRestore();
    }
  });

  it('a host`s new OS is found once what was read of it is HOST_SYSTEM_TTL_MS old; a new host at once', async () => {
    let now = 1_000_000;
    const systems = new HostSystems(gw.live, { now: () => now });
    const find = async (q: string) =>
      (await findHosts(gw.live, listHostsQuerySchema.parse({ q, location: 'dc-9' }), systems)).total;
    expect(await find('rocky')).toBe(300);
    const upgraded = { ...sample(hostId(0), NOW, 3), system: { hostname: 'n0', distro: 'Debian', release: '13' } };
    await gw.live.setHostMetrics(hostId(0), JSON.stringify(upgraded), NOW);
    await gw.live.writeTargets([hostTarget('fleet-new', S.Up, 'dc-9')]);
    await gw.live.setHostMetrics('fleet-new', JSON.stringify({ ...upgraded, hostId: 'fleet-new' }), NOW);
    try {
      now += HOST_SYSTEM_TTL_MS - 1;
      expect(await find('debian 13')).toBe(1); // the new host; host 0 still as read
      now += 1;
      expect(await find('debian 13')).toBe(2);
      expect(await find('rocky')).toBe(299);
    } finally {
      await gw.live.removeTargets([{ id: 'host:fleet-new', removedAt: NOW }]);
    }
  });
});
