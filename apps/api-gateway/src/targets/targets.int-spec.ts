import { randomUUID } from 'node:crypto';
import {
  ApiErrorBody,
  HistoryResponse,
  InstanceKind,
  TargetKind,
  TargetListResponse,
  TargetStatus as S,
  TargetView,
  type RecentTargetsResponse,
} from '@fleetwatch/contracts';
import type { LocationRecord, TargetWrite } from '@fleetwatch/live-state';
import {
  createPrismaClient,
  DatabaseClient,
  HistoryRepository,
  runInTransaction,
  StatusEventsRepository,
  TargetStatesRepository,
} from '@fleetwatch/persistence';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import * as testing from '@fleetwatch/testing';

/** The Prisma client's raw statement, for seeding a table no repository here writes. */
type RawSql = { $executeRawUnsafe(query: string, ...values: unknown[]): Promise<number> };

// Live state and history as the aggregator leaves them (written here through the same
// LiveStateStore and repositories), read back through the gateway.

let gw: GatewayHarness;
let token: string;
let db: DatabaseClient;
const NOW = Date.now();

function target(
  id: string,
  kind: TargetKind,
  status: S,
  locations: Record<string, S>,
  tags: string[] = [],
  extra: Partial<TargetWrite> = {},
): TargetWrite {
  const locs: Record<string, LocationRecord> = {};
  for (const [loc, s] of Object.entries(locations))
    locs[loc] = {
      status: s,
      observedAt: NOW - 1000,
      lastSeen: NOW - 1000,
      latencyMs: 12.5,
      detail: null,
      lifecycle: null,
    };
  return {
    id,
    kind,
    name: id.split(':').slice(1).join(':'),
    status,
    previousStatus: null,
    since: NOW - 60_000,
    lastSeen: NOW - 1000,
    lastLatencyMs: 12.5,
    lifecycle: null,
    tags,
    labels: {},
    seq: 1,
    locations: locs,
    ...extra,
  };
}

const SEED: TargetWrite[] = [
  target('check:api', TargetKind.Check, S.Partial, { 'eu-west-1': S.Up, 'us-east-1': S.Down }, ['prod', 'api']),
  target('check:db', TargetKind.Check, S.Up, { 'eu-west-1': S.Up }, ['prod', 'db']),
  target('host:gpu-1', TargetKind.Host, S.Stale, { 'lab-2': S.Stale }, ['lab']),
  target('instance:web-1', TargetKind.Instance, S.Up, { 'eu-west-1': S.Up }, ['prod'], {
    lifecycle: 'running',
    labels: { team: 'web' },
    instanceKind: InstanceKind.Container,
  }),
  target('instance:web-2', TargetKind.Instance, S.Down, { 'eu-west-1': S.Down }, ['prod'], {
    lifecycle: 'exited',
    instanceKind: InstanceKind.Pod,
  }),
  // Stored before instance kinds were kept: none (an `instance`, neither a container nor a pod).
  target('instance:kube/ns/pod "x"', TargetKind.Instance, S.Up, { 'eu-west-1': S.Up }, []),
];

const get = <T>(path: string) => gw.request<T>('GET', path, { token });

beforeAll(async () => {
  gw = await startGateway(testing, 'targets');
  token = await gw.login('admin', ADMIN_PASSWORD);
  await gw.live.writeTargets(SEED);
  db = createPrismaClient(gw.database.databaseUrl);
});
afterAll(async () => {
  await db?.$disconnect();
  await gw?.close();
});

describe('GET /api/v1/targets', () => {
  it('lists every target in id order with live status, per-location status and consensus', async () => {
    const res = await get<TargetListResponse>('/api/v1/targets');
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(SEED.length);
    expect(res.body.nextCursor).toBeNull();
    expect(res.body.items.map((t) => t.id)).toEqual(SEED.map((t) => t.id).sort());
    const api = res.body.items.find((t) => t.id === 'check:api') as TargetView;
    expect(api).toEqual({
      id: 'check:api',
      kind: 'check',
      name: 'api',
      status: 'PARTIAL',
      consensus: 'PARTIAL',
      locations: [
        {
          location: 'eu-west-1',
          status: 'UP',
          lastSeen: new Date(NOW - 1000).toISOString(),
          latencyMs: 12.5,
          detail: null,
        },
        {
          location: 'us-east-1',
          status: 'DOWN',
          lastSeen: new Date(NOW - 1000).toISOString(),
          latencyMs: 12.5,
          detail: null,
        },
      ],
      lastSeen: new Date(NOW - 1000).toISOString(),
      since: new Date(NOW - 60_000).toISOString(),
      tags: ['prod', 'api'],
      labels: {},
      lifecycle: null,
      instanceKind: null,
    });
  });

  it.each([
    ['kind=instance', ['instance:kube/ns/pod "x"', 'instance:web-1', 'instance:web-2']],
    // A pushed instance's own kind (its latest update's), alone, in any case, or mixed with the target kinds (OR).
    ['kind=container', ['instance:web-1']],
    ['kind=pod,check', ['check:api', 'check:db', 'instance:web-2']],
    ['kind=Container,POD', ['instance:web-1', 'instance:web-2']],
    ['kind=instance,container', ['instance:kube/ns/pod "x"', 'instance:web-1', 'instance:web-2']],
    ['kind=container,pod&status=DOWN', ['instance:web-2']],
    ['kind=process,service,job', []],
    ['kind=host,check', ['check:api', 'check:db', 'host:gpu-1']],
    ['status=DOWN,STALE', ['host:gpu-1', 'instance:web-2']],
    ['tag=prod', ['check:api', 'check:db', 'instance:web-1', 'instance:web-2']],
    ['location=us-east-1', ['check:api']],
    ['kind=instance&status=UP&tag=prod', ['instance:web-1']],
    ['tag=nothing-has-it', []],
  ])('filters %s', async (query, expected) => {
    const res = await get<TargetListResponse>(`/api/v1/targets?${query}`);
    expect(res.status).toBe(200);
    expect(res.body.items.map((t) => t.id)).toEqual(expected);
    expect(res.body.total).toBe(expected.length);
  });

  it.each(['', '&tag=prod'])('pages with limit and cursor (filter "%s")', async (filter) => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { body: TargetListResponse } = await get<TargetListResponse>(
        `/api/v1/targets?limit=2${filter}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((t) => t.id));
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    const all = (await get<TargetListResponse>(`/api/v1/targets?limit=1000${filter}`)).body.items.map((t) => t.id);
    expect(seen).toEqual(all);
    expect(pages).toBe(Math.ceil(all.length / 2));
  });

  it('names bad query parameters', async () => {
    const res = await get<ApiErrorBody>('/api/v1/targets?kind=vm&limit=5000');
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path).sort()).toEqual(['kind.0', 'limit']);
  });

  it('a kind that is neither a target kind nor an instance kind is a 400 naming every value allowed', async () => {
    const res = await get<ApiErrorBody>('/api/v1/targets?kind=pod,vm');
    expect(res.status).toBe(400);
    const issues = res.body.error.issues ?? [];
    expect(issues.map((i) => i.path)).toEqual(['kind.1']);
    for (const allowed of ['check', 'host', 'instance', 'container', 'pod', 'process', 'service', 'job'])
      expect(issues[0].message).toContain(`"${allowed}"`);
  });
});

describe('GET /api/v1/targets/{id}', () => {
  it('returns one target, ids with ":", "/" and quotes included', async () => {
    const web = await get<TargetView>('/api/v1/targets/instance:web-1');
    expect(web.status).toBe(200);
    expect(web.body).toMatchObject({
      id: 'instance:web-1',
      kind: 'instance',
      status: 'UP',
      lifecycle: 'running',
      labels: { team: 'web' },
      instanceKind: 'container',
    });
    const odd = await get<TargetView>(`/api/v1/targets/${encodeURIComponent('instance:kube/ns/pod "x"')}`);
    expect(odd.status).toBe(200);
    expect(odd.body.id).toBe('instance:kube/ns/pod "x"');
    expect(odd.body.instanceKind).toBeNull();
  });

  it('answers 404 JSON for an unknown id', async () => {
    const res = await get<ApiErrorBody>('/api/v1/targets/instance:nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(res.body.error).toEqual({ code: 'not_found', message: 'target "instance:nope" not found' });
  });
});

describe('GET /api/v1/targets/{id}/history', () => {
  const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;

  beforeAll(async () => {
    const repo = new HistoryRepository(db);
    const events = new StatusEventsRepository(db);
    await runInTransaction(db, async (tx) => {
      // Check results at two locations: two within the last hour, one three hours ago.
      await repo.insertCheckResults(tx, [
        {
          messageId: randomUUID(),
          checkId: 'api',
          targetId: 'check:api',
          location: 'eu-west-1',
          ok: true,
          latencyMs: 20,
          failureReason: null,
          metadata: null,
          occurredAt: NOW - 10 * 60_000,
        },
        {
          messageId: randomUUID(),
          checkId: 'api',
          targetId: 'check:api',
          location: 'us-east-1',
          ok: false,
          latencyMs: null,
          failureReason: 'timeout',
          metadata: null,
          occurredAt: NOW - 5 * 60_000,
        },
        {
          messageId: randomUUID(),
          checkId: 'api',
          targetId: 'check:api',
          location: 'eu-west-1',
          ok: true,
          latencyMs: 40,
          failureReason: null,
          metadata: null,
          occurredAt: minute(NOW - 180 * 60_000) + 1000, // both samples in one minute, whatever the second NOW falls on
        },
        {
          messageId: randomUUID(),
          checkId: 'api',
          targetId: 'check:api',
          location: 'eu-west-1',
          ok: true,
          latencyMs: 60,
          failureReason: null,
          metadata: null,
          occurredAt: minute(NOW - 180 * 60_000) + 2000,
        },
      ]);
      await repo.insertStatusUpdates(tx, [
        {
          messageId: randomUUID(),
          updateId: 'u1',
          targetId: 'instance:web-2',
          instanceId: 'web-2',
          kind: 'container',
          lifecycleStatus: 'exited',
          status: S.Down,
          source: 'docker',
          location: 'eu-west-1',
          occurredAt: NOW - 2 * 60_000,
          receivedAt: NOW - 2 * 60_000,
          labels: null,
          message: null,
          metadata: null,
        },
      ]);
      await repo.markRollupsDirty(tx, [
        { targetId: 'check:api', location: 'eu-west-1', bucket: minute(NOW - 180 * 60_000) },
        { targetId: 'check:api', location: 'eu-west-1', bucket: minute(NOW - 10 * 60_000) },
        { targetId: 'check:api', location: 'us-east-1', bucket: minute(NOW - 5 * 60_000) },
      ]);
      await events.insertMany(tx, [
        {
          targetId: 'check:api',
          kind: TargetKind.Check,
          location: null,
          from: S.Unknown,
          to: S.Up,
          reason: 'first result',
          at: NOW - 180 * 60_000,
          sequence: 1,
        },
        {
          targetId: 'check:api',
          kind: TargetKind.Check,
          location: 'us-east-1',
          from: S.Up,
          to: S.Down,
          reason: 'timeout',
          at: NOW - 5 * 60_000,
          sequence: 2,
        },
        {
          targetId: 'check:api',
          kind: TargetKind.Check,
          location: null,
          from: S.Up,
          to: S.Partial,
          reason: 'us-east-1 down',
          at: NOW - 5 * 60_000,
          sequence: 3,
        },
      ]);
    });
    await repo.recomputeDirtyRollups();
  });

  it('≤ 60 minutes: raw observations and the status events in order', async () => {
    const res = await get<HistoryResponse>('/api/v1/targets/check:api/history?minutes=60');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ targetId: 'check:api', minutes: 60, resolution: 'raw' });
    expect(res.body.points).toEqual([
      {
        bucket: new Date(NOW - 10 * 60_000).toISOString(),
        location: 'eu-west-1',
        count: 1,
        okCount: 1,
        minLatencyMs: 20,
        avgLatencyMs: 20,
        maxLatencyMs: 20,
        p95LatencyMs: 20,
      },
      {
        bucket: new Date(NOW - 5 * 60_000).toISOString(),
        location: 'us-east-1',
        count: 1,
        okCount: 0,
        minLatencyMs: null,
        avgLatencyMs: null,
        maxLatencyMs: null,
        p95LatencyMs: null,
      },
    ]);
    expect(res.body.events).toEqual([
      {
        at: new Date(NOW - 5 * 60_000).toISOString(),
        location: 'us-east-1',
        from: 'UP',
        to: 'DOWN',
        reason: 'timeout',
      },
      {
        at: new Date(NOW - 5 * 60_000).toISOString(),
        location: null,
        from: 'UP',
        to: 'PARTIAL',
        reason: 'us-east-1 down',
      },
    ]);
  });

  it('> 60 minutes: 1-minute rollups, and every event of the window', async () => {
    const res = await get<HistoryResponse>('/api/v1/targets/check:api/history?minutes=240');
    expect(res.body.resolution).toBe('1m');
    expect(res.body.stepSeconds).toBe(60);
    expect(res.body.points).toEqual([
      {
        bucket: new Date(minute(NOW - 180 * 60_000)).toISOString(),
        location: 'eu-west-1',
        count: 2,
        okCount: 2,
        minLatencyMs: 40,
        avgLatencyMs: 50,
        maxLatencyMs: 60,
        p95LatencyMs: 60,
      },
      {
        bucket: new Date(minute(NOW - 10 * 60_000)).toISOString(),
        location: 'eu-west-1',
        count: 1,
        okCount: 1,
        minLatencyMs: 20,
        avgLatencyMs: 20,
        maxLatencyMs: 20,
        p95LatencyMs: 20,
      },
      {
        bucket: new Date(minute(NOW - 5 * 60_000)).toISOString(),
        location: 'us-east-1',
        count: 1,
        okCount: 0,
        minLatencyMs: null,
        avgLatencyMs: null,
        maxLatencyMs: null,
        p95LatencyMs: null,
      },
    ]);
    expect(res.body.events.map((e) => `${e.location ?? 'all'}:${e.from}->${e.to}`)).toEqual([
      'all:UNKNOWN->UP',
      'us-east-1:UP->DOWN',
      'all:UP->PARTIAL',
    ]);
  });

  it('beyond 1440 minutes: rollups merged into whole-minute steps, at most 1440 points a location', async () => {
    const newestMinute = minute(Date.now());
    // 90 days of a target at two locations: 259,200 rollup rows, all of which the route read and sent (~40 MB).
    await runInTransaction(db, (tx) =>
      new TargetStatesRepository(db).saveMany(tx, [
        {
          id: 'check:long',
          kind: TargetKind.Check,
          name: 'long',
          status: S.Up,
          since: null,
          lastSeen: null,
          lastLatencyMs: null,
          lifecycle: null,
          tags: [],
          labels: {},
          seq: 0,
          locations: {},
        },
      ]),
    );
    await (db as unknown as RawSql).$executeRawUnsafe(
      `INSERT INTO rollups_1m (target_id, location, bucket, count, ok_count, min_latency_ms, avg_latency_ms, max_latency_ms, p95_latency_ms, latency_count)
       SELECT 'check:long', l, to_timestamp($1::float8 / 1000) - g * interval '1 minute', 6, 5, g % 50, 100, 200 + g % 50, 150 + g % 30, 4
       FROM generate_series(0, 129599) g, unnest(ARRAY['eu-west-1', 'us-east-1']) l`,
      newestMinute,
    );
    const res = await get<HistoryResponse>('/api/v1/targets/check:long/history?minutes=129600');
    expect(res.status).toBe(200);
    for (const loc of ['eu-west-1', 'us-east-1']) {
      const points = res.body.points.filter((p) => p.location === loc);
      // 1440 steps: the window's 129,600 minutes span 1441 steps when not aligned to them, and the oldest (partial)
      // one goes (docs/api.md: ≤ 1440 points a location).
      expect(points.length).toBe(1440);
      expect(points.every((p) => Date.parse(p.bucket) % (90 * 60_000) === 0)).toBe(true);
      // Every minute of the steps kept counted once: 6 samples (5 good) in each; less than a step's lost at the start.
      const from = Math.max(Date.parse(points[0].bucket), newestMinute - 129_599 * 60_000);
      const kept = (newestMinute - from) / 60_000 + 1;
      expect(kept).toBeGreaterThan(129_600 - 90);
      expect(points.reduce((n, p) => n + p.count, 0)).toBe(6 * kept);
      expect(points.reduce((n, p) => n + p.okCount, 0)).toBe(5 * kept);
      // A whole step: 90 minutes' counts, least min, greatest max, mean by latency count, greatest minute p95.
      expect(points[10]).toEqual({
        bucket: points[10].bucket,
        location: loc,
        count: 540,
        okCount: 450,
        minLatencyMs: 0,
        avgLatencyMs: 100,
        maxLatencyMs: 249,
        p95LatencyMs: 179,
      });
    }
    expect(res.body).toMatchObject({ resolution: '1m', stepSeconds: 90 * 60 });
    // Up to a day, each minute its own point; the step grows a minute per further 1440.
    for (const [minutes, step] of [
      [240, 60],
      [1440, 60],
      [1441, 120],
      [10_080, 420],
    ])
      expect(
        (await get<HistoryResponse>(`/api/v1/targets/check:long/history?minutes=${minutes}`)).body.stepSeconds,
      ).toBe(step);
    expect((await get<HistoryResponse>('/api/v1/targets/check:long/history?minutes=60')).body.stepSeconds).toBeNull();
  });

  it('filters by location (its events and the consensus events)', async () => {
    const res = await get<HistoryResponse>('/api/v1/targets/check:api/history?minutes=60&location=eu-west-1');
    expect(res.body.points.map((p) => p.location)).toEqual(['eu-west-1']);
    expect(res.body.events.map((e) => e.location)).toEqual([null]);
  });

  it('pushed updates count as raw points (ok = UP)', async () => {
    const res = await get<HistoryResponse>('/api/v1/targets/instance:web-2/history');
    expect(res.body.minutes).toBe(60);
    expect(res.body.points).toEqual([expect.objectContaining({ location: 'eu-west-1', count: 1, okCount: 0 })]);
  });

  it('serves a target Postgres knows while live state does not (Redis flushed, not rebuilt yet)', async () => {
    await runInTransaction(db, (tx) =>
      new TargetStatesRepository(db).saveMany(tx, [
        {
          id: 'check:only-in-pg',
          kind: TargetKind.Check,
          name: 'only-in-pg',
          status: S.Up,
          since: null,
          lastSeen: null,
          lastLatencyMs: null,
          lifecycle: null,
          tags: [],
          labels: {},
          seq: 0,
          locations: {},
        },
      ]),
    );
    expect((await get('/api/v1/targets/check:only-in-pg/history')).status).toBe(200);
    expect((await get('/api/v1/targets/check:only-in-pg')).status).toBe(404);
  });

  it('404 for an unknown target, 400 naming bad parameters', async () => {
    expect((await get<ApiErrorBody>('/api/v1/targets/check:nope/history')).status).toBe(404);
    const bad = await get<ApiErrorBody>('/api/v1/targets/check:api/history?minutes=abc&extra=1');
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(['minutes']));
  });
});

describe('GET /api/v1/targets/sparklines', () => {
  const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;
  const M30 = minute(NOW - 30 * 60_000);
  const M10 = minute(NOW - 10 * 60_000);

  beforeAll(async () => {
    const repo = new HistoryRepository(db);
    const result = (location: string, ok: boolean, latencyMs: number | null, occurredAt: number) => ({
      messageId: randomUUID(),
      checkId: 'spark',
      targetId: 'check:spark',
      location,
      ok,
      latencyMs,
      failureReason: ok ? null : 'timeout',
      metadata: null,
      occurredAt,
    });
    const update = (status: S, occurredAt: number) => ({
      messageId: randomUUID(),
      updateId: randomUUID(),
      targetId: 'instance:spark-1',
      instanceId: 'spark-1',
      kind: 'container',
      lifecycleStatus: status === S.Up ? 'running' : 'exited',
      status,
      source: 'docker',
      location: 'eu-west-1',
      occurredAt,
      receivedAt: occurredAt,
      labels: null,
      message: null,
      metadata: null,
    });
    await runInTransaction(db, async (tx) => {
      await repo.insertCheckResults(tx, [
        // One minute, two locations: eu 10 ms and 30 ms and two failures without a latency (mean 20 over 2),
        // us 50 ms (1 sample) → 30 ms over the three samples with a latency; 3 good of 5.
        result('eu-west-1', true, 10, M30 + 1000),
        result('eu-west-1', true, 30, M30 + 2000),
        result('eu-west-1', false, null, M30 + 2500),
        result('eu-west-1', false, null, M30 + 2600),
        result('us-east-1', true, 50, M30 + 3000),
        // Outside the hour: never shown.
        result('eu-west-1', false, 999, minute(NOW - 75 * 60_000) + 1000),
      ]);
      await repo.insertStatusUpdates(tx, [
        update(S.Up, M10 + 1000),
        update(S.Down, M10 + 2000),
        update(S.Up, M10 + 3000),
        update(S.Up, M10 + 4000),
      ]);
      await repo.markRollupsDirty(tx, [
        { targetId: 'check:spark', location: 'eu-west-1', bucket: M30 },
        { targetId: 'check:spark', location: 'us-east-1', bucket: M30 },
        { targetId: 'check:spark', location: 'eu-west-1', bucket: minute(NOW - 75 * 60_000) },
        { targetId: 'instance:spark-1', location: 'eu-west-1', bucket: M10 },
      ]);
    });
    await repo.recomputeDirtyRollups();
    // The locations each target reports from, as the aggregator keeps them (sparklines read rollups per location).
    for (const [id, loc] of [
      ['check:spark', 'eu-west-1'],
      ['check:spark', 'us-east-1'],
      ['instance:spark-1', 'eu-west-1'],
    ])
      await (db as unknown as RawSql).$executeRawUnsafe(
        `INSERT INTO target_location_states (target_id, location, status, observed_at, last_seen) VALUES ($1, $2, 'UP', now(), now())`,
        id,
        loc,
      );
  });

  type Body = {
    from: string;
    minutes: number;
    targets: { id: string; availability: (number | null)[]; latencyMs: (number | null)[] }[];
  };
  const at = (body: Body, bucket: number) => (bucket - Date.parse(body.from)) / 60_000;

  it('answers 60 minutes per id, in the order asked: availability and latency summed over locations', async () => {
    const t0 = Date.now();
    const res = await get<Body>(
      `/api/v1/targets/sparklines?id=${encodeURIComponent('instance:spark-1')}&id=check:spark&id=check:none&id=check:spark`,
    );
    const t1 = Date.now();
    expect(res.status).toBe(200);
    expect(res.body.minutes).toBe(60);
    expect(res.body.targets.map((t) => t.id)).toEqual(['instance:spark-1', 'check:spark', 'check:none']);
    const [inst, check, none] = res.body.targets;
    for (const t of res.body.targets) {
      expect(t.availability).toHaveLength(60);
      expect(t.latencyMs).toHaveLength(60);
    }
    // The current minute is the last one.
    const current = Date.parse(res.body.from) + 59 * 60_000;
    expect(current === minute(t0) || current === minute(t1)).toBe(true);
    const i30 = at(res.body, M30);
    expect(check.availability[i30]).toBeCloseTo(3 / 5, 6);
    expect(check.latencyMs[i30]).toBeCloseTo(30, 6); // not (20 × 4 + 50) / 5 = 26: failures carry no latency
    expect(check.availability.filter((v) => v !== null)).toHaveLength(1); // the 75-minute-old sample is outside
    const i10 = at(res.body, M10);
    expect(inst.availability[i10]).toBe(0.75);
    expect(inst.latencyMs[i10]).toBeNull(); // pushed updates carry no latency
    expect(inst.availability.filter((v) => v !== null)).toHaveLength(1);
    expect(none.availability.every((v) => v === null) && none.latencyMs.every((v) => v === null)).toBe(true);
  });

  it('takes odd ids as data (quotes, slashes, __proto__) and names bad requests', async () => {
    const odd = await get<Body>(
      `/api/v1/targets/sparklines?id=${encodeURIComponent('instance:kube/ns/pod "x"')}&id=__proto__`,
    );
    expect(odd.status).toBe(200);
    expect(odd.body.targets.map((t) => t.id)).toEqual(['instance:kube/ns/pod "x"', '__proto__']);
    const none = await get<ApiErrorBody>('/api/v1/targets/sparklines');
    expect(none.status).toBe(400);
    expect(none.body.error.issues?.map((i) => i.path)).toContain('id');
    const many = await get<ApiErrorBody>(
      `/api/v1/targets/sparklines?${Array.from({ length: 101 }, (_, i) => `id=check:${i}`).join('&')}`,
    );
    expect(many.status).toBe(400);
    expect(many.body.error.message).toContain('at most 100');
    const nul = await get<ApiErrorBody>('/api/v1/targets/sparklines?id=check%3Aa%00b');
    expect(nul.status).toBe(400);
    const extra = await get<ApiErrorBody>('/api/v1/targets/sparklines?id=check:spark&minutes=5');
    expect(extra.status).toBe(400);
  });

  it('is for signed-in users only', async () => {
    expect((await gw.request('GET', '/api/v1/targets/sparklines?id=check:spark')).status).toBe(401);
  });
});

describe('GET /api/v1/targets/recent', () => {
  it('lists the targets whose status changed last, newest first, as full views; limit bounded', async () => {
    await gw.live.writeTargets([
      target('check:recent-a', TargetKind.Check, S.Down, { 'eu-west-1': S.Down }, [], { since: NOW - 3_000 }),
      target('check:recent-b', TargetKind.Check, S.Up, { 'eu-west-1': S.Up }, [], { since: NOW - 1_000 }),
      target('instance:recent-c', TargetKind.Instance, S.Up, { 'eu-west-1': S.Up }, [], { since: NOW - 2_000 }),
    ]);
    // Read from every target's hash until live state is marked built by an aggregator of this layout, from the
    // index (idx:since) once it is: the same answer both ways.
    await gw.redis.del('live:built:3');
    for (const built of [false, true]) {
      if (built) await gw.live.markBuilt();
      const res = await get<RecentTargetsResponse>('/api/v1/targets/recent?limit=3');
      expect(res.status).toBe(200);
      expect(res.body.items.map((t) => t.id)).toEqual(['check:recent-b', 'instance:recent-c', 'check:recent-a']);
      // The same view as GET /api/v1/targets/{id}.
      const one = await get<TargetView>(`/api/v1/targets/${encodeURIComponent('check:recent-a')}`);
      expect(res.body.items[2]).toEqual(one.body);
      // Default 12: every seeded target here (9), the older changes after these three.
      const all = (await get<RecentTargetsResponse>('/api/v1/targets/recent')).body.items;
      expect(all).toHaveLength(SEED.length + 3);
      expect(all.slice(0, 3).map((t) => t.id)).toEqual(['check:recent-b', 'instance:recent-c', 'check:recent-a']);
    }
    for (const [q, path] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=x', 'limit'],
      ['status=UP', '(body)'], // an unknown parameter
    ]) {
      const bad = await get<ApiErrorBody>(`/api/v1/targets/recent?${q}`);
      expect(bad.status).toBe(400);
      expect(bad.body.error.issues?.map((i) => i.path)).toEqual([path]);
    }
    expect((await gw.request('GET', '/api/v1/targets/recent')).status).toBe(401);
  });
});
