import {
  ApiErrorCode,
  TargetKind,
  TargetStatus as S,
  type AlertListResponse,
  type ApiErrorBody,
  type HistoryResponse,
  type HostListResponse,
  type RecentTargetsResponse,
  type TargetListResponse,
  type TargetView,
} from '@fleetwatch/contracts';
import type { TargetSnapshot } from '@fleetwatch/domain';
import { LiveKeys, type TargetWrite } from '@fleetwatch/live-state';
import {
  AlertConfigRepository,
  AlertStatesRepository,
  closeSqlPool,
  createPrismaClient,
  createSqlPool,
  runInSqlTransaction,
  runInTransaction,
  TargetStatesRepository,
  type DatabaseClient,
} from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import { processRestCorruptReads, REST_CORRUPT_RECORDS_METRIC } from '../live/corrupt-records';

// A record of live state that cannot be read (a target whose tags are not JSON: written by hand, a bad migration)
// among many that can. Redis answers, so it is no outage — yet one such record made every read of a list holding it a
// 500 "internal error" (GET /api/v1/targets, /targets/recent, /hosts), and its own detail a 500 as well; a corrupt
// location entry was dropped from the target without a trace.

let gw: GatewayHarness;
let token: string;
let db: DatabaseClient;
const NOW = Date.now();

function write(id: string, kind: TargetKind, status: S, extra: Partial<TargetWrite> = {}): TargetWrite {
  return {
    id,
    kind,
    name: id.split(':')[1] as string,
    status,
    previousStatus: null,
    since: NOW - 60_000,
    lastSeen: NOW - 1000,
    lastLatencyMs: 12,
    lifecycle: null,
    tags: ['prod'],
    labels: {},
    seq: 3,
    locations: {
      'eu-west-1': {
        status,
        observedAt: NOW - 1000,
        lastSeen: NOW - 1000,
        latencyMs: 12,
        detail: null,
        lifecycle: null,
      },
    },
    ...extra,
  };
}

/** The durable state the aggregator committed for a target (Postgres): DOWN there, to tell it from live state's UP. */
function durable(id: string, kind: TargetKind): TargetSnapshot {
  return {
    id,
    kind,
    name: `${id.split(':')[1]} (durable)`,
    status: S.Down,
    since: NOW - 30_000,
    lastSeen: NOW - 2000,
    lastLatencyMs: null,
    lifecycle: null,
    tags: ['prod'],
    labels: { team: 'core' },
    seq: 3,
    locations: {
      'eu-west-1': {
        status: S.Down,
        observedAt: NOW - 2000,
        lastSeen: NOW - 2000,
        latencyMs: null,
        detail: 'timeout',
        lifecycle: null,
        deadline: null,
        run: null,
      },
    },
  };
}

const get = <T>(path: string) => gw.request<T>('GET', path, { token });

/** The REST routes' corrupt reads in this process (exact: /metrics itself reads live state, so a scrape adds its own). */
const corruptReads = (): number => processRestCorruptReads();

async function scrape(): Promise<string> {
  return (await fetch(`${gw.url}/metrics`)).text();
}

beforeAll(async () => {
  gw = await startGateway(testing, 'corrupt-record');
  token = await gw.login('admin', ADMIN_PASSWORD);
  db = createPrismaClient(gw.database.databaseUrl);
  await gw.live.writeTargets([
    write('check:a', TargetKind.Check, S.Up),
    write('check:b', TargetKind.Check, S.Up),
    write('check:c', TargetKind.Check, S.Up),
    write('check:d', TargetKind.Check, S.Up),
    write('host:h1', TargetKind.Host, S.Up),
    write('host:h2', TargetKind.Host, S.Up),
  ]);
  await runInTransaction(db, (tx) =>
    new TargetStatesRepository(db).saveMany(tx, [
      durable('check:b', TargetKind.Check),
      durable('host:h2', TargetKind.Host),
    ]),
  );
  // check:b and host:h2: held in Postgres; check:d: not (its row lost, or never committed there).
  for (const id of ['check:b', 'check:d', 'host:h2']) await gw.redis.hset(LiveKeys.target(id), 'tags', '{not json');
});
afterAll(async () => {
  await db?.$disconnect();
  await gw?.close();
});

describe('a target whose record in live state cannot be read (corrupt tags)', () => {
  it('GET /api/v1/targets answers 200 with the others, that target from its durable state (marked), and counts it', async () => {
    const before = corruptReads();
    const res = await get<TargetListResponse>('/api/v1/targets');
    expect(res.status).toBe(200);
    // check:d has no durable state to show: left out of the page, still counted in `total` (the index holds it).
    expect(res.body.items.map((t) => t.id)).toEqual(['check:a', 'check:b', 'check:c', 'host:h1', 'host:h2']);
    expect(res.body.total).toBe(6);
    const b = res.body.items.find((t) => t.id === 'check:b') as TargetView;
    expect(b).toMatchObject({
      name: 'b (durable)',
      status: S.Down,
      labels: { team: 'core' },
      locations: [{ location: 'eu-west-1', status: S.Down, detail: 'timeout' }],
      fromDurableState: { reason: expect.stringContaining('corrupt tags') },
    });
    expect(res.body.items.find((t) => t.id === 'check:a')).not.toHaveProperty('fromDurableState');
    // Three records on the page could not be read: each read counted (the shared /metrics of this process).
    expect(corruptReads()).toBeGreaterThanOrEqual(before + 3);
  });

  it('a filtered list (index path) answers the same way', async () => {
    const res = await get<TargetListResponse>('/api/v1/targets?kind=check&limit=2');
    expect(res.status).toBe(200);
    expect(res.body.items.map((t) => [t.id, t.fromDurableState !== undefined])).toEqual([
      ['check:a', false],
      ['check:b', true],
    ]);
    expect(res.body.nextCursor).toBe('check:b');
  });

  it('GET /api/v1/targets/recent answers 200 without it', async () => {
    const res = await get<RecentTargetsResponse>('/api/v1/targets/recent');
    expect(res.status).toBe(200);
    expect(res.body.items.map((t) => t.id).sort()).toEqual(['check:a', 'check:c', 'host:h1']);
  });

  it('GET /api/v1/hosts answers 200 with the other hosts and that host from its durable state (marked)', async () => {
    for (const path of ['/api/v1/hosts', '/api/v1/hosts?q=h']) {
      const res = await get<HostListResponse>(path);
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
      expect(res.body.items.map((h) => [h.id, h.status, h.fromDurableState !== undefined])).toEqual([
        ['h1', S.Up, false],
        ['h2', S.Down, true],
      ]);
    }
  });

  it('its own detail answers 503 naming the record (as Redis away answers 503), never a 500; counted', async () => {
    for (const path of ['/api/v1/targets/check%3Ab', '/api/v1/hosts/h2']) {
      const before = corruptReads();
      const res = await get<ApiErrorBody>(path);
      expect({ path, status: res.status }).toEqual({ path, status: 503 });
      expect(res.body.error.code).toBe(ApiErrorCode.Unavailable);
      expect(res.body.error.message).toMatch(/the tags of target:(check:b|host:h2) is corrupt/);
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(corruptReads()).toBe(before + 1);
    }
  });

  it('its history (Postgres) still answers: the target is held, only its live record is unreadable', async () => {
    const res = await get<HistoryResponse>('/api/v1/targets/check%3Ad/history?minutes=5');
    expect(res.status).toBe(200);
    expect(res.body.targetId).toBe('check:d');
  });

  it('written again (its next result): read from live state again, no mark', async () => {
    await gw.live.writeTargets([write('check:b', TargetKind.Check, S.Up, { seq: 4 })]);
    const res = await get<TargetView>('/api/v1/targets/check%3Ab');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: 'check:b', name: 'b', status: S.Up });
    expect(res.body).not.toHaveProperty('fromDurableState');
  });
});

it("GET /api/v1/alerts answers 200: an alert of that target is listed without the target's name", async () => {
  const pool = createSqlPool(gw.database.databaseUrl);
  try {
    await runInSqlTransaction(pool, (tx) =>
      new AlertStatesRepository(pool).saveStates(
        tx,
        [
          {
            key: 'default.target-down\u0000check:d',
            ruleId: 'default.target-down',
            targetId: 'check:d',
            fingerprint: 'cccccccccccccc01',
            state: 'firing',
            labels: {
              alertname: 'target down',
              severity: 'critical',
              rule_id: 'default.target-down',
              target: 'check:d',
            },
            value: null,
            activeAt: NOW - 120_000,
            firedAt: NOW - 60_000,
            resolvedAt: null,
            lastSentAt: null,
          },
        ],
        [],
      ),
    );
  } finally {
    await closeSqlPool(pool);
  }
  const before = corruptReads();
  const res = await get<AlertListResponse>('/api/v1/alerts');
  expect(res.status).toBe(200);
  expect(res.body.items.map((a) => [a.targetId, a.targetName])).toEqual([['check:d', null]]);
  expect(corruptReads()).toBe(before + 1);
});

it("GET /metrics keeps the other targets' series (it had none: the whole read failed) and counts the reads", async () => {
  // Past the exporters' 1 s snapshot, so this scrape reads live state.
  await new Promise((r) => setTimeout(r, 1100));
  const before = corruptReads();
  const text = await scrape();
  expect(text).toContain('fleetwatch_target_up{target="check:a",kind="check",location="all"} 1');
  expect(text).toContain('fleetwatch_host_up{host="h1",location="eu-west-1"} 1');
  expect(text).not.toContain('target="check:d"');
  expect(corruptReads()).toBeGreaterThan(before);
  const line = text.split('\n').find((l) => l.startsWith(`${REST_CORRUPT_RECORDS_METRIC} `));
  expect(Number(line?.slice(REST_CORRUPT_RECORDS_METRIC.length + 1))).toBeGreaterThanOrEqual(before);
});

describe('a corrupt location entry of a target', () => {
  it('is left out of the target, which answers with its other locations — counted, no longer silent', async () => {
    await gw.redis.hset(LiveKeys.targetLocations('check:c'), 'us-east-1', '{not json', 'ap-south-1', '"a string"');
    const before = corruptReads();
    const res = await get<TargetView>('/api/v1/targets/check%3Ac');
    expect(res.status).toBe(200);
    expect(res.body.locations.map((l) => l.location)).toEqual(['eu-west-1']);
    expect(corruptReads()).toBe(before + 2);
    const list = await get<TargetListResponse>('/api/v1/targets?kind=check');
    expect(list.status).toBe(200);
    expect(list.body.items.find((t) => t.id === 'check:c')?.locations.map((l) => l.location)).toEqual(['eu-west-1']);
    // Its two entries again, and check:d (corrupt tags, no durable state) on the page.
    expect(corruptReads()).toBe(before + 5);
  });
});

it('GET /api/v1/alerts: an alert of a corrupt target under a maintenance window scoped by its tag is shown muted, as the aggregator mutes it (from Postgres)', async () => {
  // The evaluator matches maintenance scopes against the durable state (Postgres), which reads the target's tags fine;
  // the list matched the alert as a target live state does not hold (no tags, no site): shown not muted — while it
  // was muted, and no notification went out for it.
  const id = 'check:m';
  await gw.live.writeTargets([write(id, TargetKind.Check, S.Up)]);
  await runInTransaction(db, (tx) =>
    new TargetStatesRepository(db).saveMany(tx, [{ ...durable(id, TargetKind.Check), tags: ['maint'] }]),
  );
  await gw.redis.hset(LiveKeys.target(id), 'tags', '{not json');
  const pool = createSqlPool(gw.database.databaseUrl);
  try {
    await runInSqlTransaction(pool, async (tx) => {
      await new AlertStatesRepository(pool).saveStates(
        tx,
        [
          {
            key: `default.target-down\u0000${id}`,
            ruleId: 'default.target-down',
            targetId: id,
            fingerprint: 'cccccccccccccc02',
            state: 'firing',
            labels: { alertname: 'target down', severity: 'critical', rule_id: 'default.target-down', target: id },
            value: null,
            activeAt: NOW - 120_000,
            firedAt: NOW - 60_000,
            resolvedAt: null,
            lastSentAt: null,
          },
        ],
        [],
      );
      await new AlertConfigRepository(pool).insertNew(
        tx,
        'maintenanceWindows',
        [
          {
            id: 'maint-window',
            name: 'maint window',
            hash: 'x',
            spec: {
              name: 'maint window',
              scope: { targetIds: [], tags: ['maint'], sites: [] },
              schedule: {
                type: 'once',
                startsAt: new Date(NOW - 3_600_000).toISOString(),
                endsAt: new Date(NOW + 3_600_000).toISOString(),
              },
              createdBy: 'admin',
            },
          },
        ],
        1,
      );
    });
  } finally {
    await closeSqlPool(pool);
  }
  const res = await get<AlertListResponse>(`/api/v1/alerts?targetId=${encodeURIComponent(id)}`);
  expect(res.status).toBe(200);
  expect(res.body.items.map((a) => [a.targetId, a.targetName, a.muted])).toEqual([
    [id, 'm (durable)', { kind: 'maintenance', id: 'maint-window' }],
  ]);
});
