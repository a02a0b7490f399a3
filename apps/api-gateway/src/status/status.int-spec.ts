import {
  StatusEventsResponse,
  StatusSummaryResponse,
  InstanceListResponse,
  InstanceKind,
  TargetKind as K,
  TargetStatus as S,
  type ApiErrorBody,
} from '@fleetwatch/contracts';
import type { TargetWrite } from '@fleetwatch/live-state';
import { createPrismaClient, DatabaseClient, runInTransaction, StatusEventsRepository } from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';

// The overview's and pushed-instances page's reads (issue 17): counts over the whole set,
// recent status events paged newest first, pushed instances.

let gw: GatewayHarness;
let token: string;
let db: DatabaseClient;
const NOW = Date.now();

function target(id: string, kind: K, status: S, tags: string[] = [], lifecycle: string | null = null): TargetWrite {
  return {
    id,
    kind,
    name: id.split(':').slice(1).join(':'),
    status,
    previousStatus: null,
    since: NOW - 60_000,
    lastSeen: NOW - 1000,
    lastLatencyMs: null,
    lifecycle,
    tags,
    labels: {},
    seq: 1,
    locations: {
      'eu-west-1': { status, observedAt: NOW - 1000, lastSeen: NOW - 1000, latencyMs: null, detail: null, lifecycle },
    },
  };
}

beforeAll(async () => {
  gw = await startGateway(testing, 'status');
  token = await gw.login('admin', ADMIN_PASSWORD);
  await gw.live.writeTargets([
    target('check:a', K.Check, S.Up, ['prod']),
    target('check:b', K.Check, S.Down, ['prod']),
    target('host:h1', K.Host, S.Stale),
    { ...target('instance:web-1', K.Instance, S.Up, ['prod'], 'Running'), instanceKind: InstanceKind.Container },
    { ...target('instance:web-2', K.Instance, S.Down, [], 'Failed'), instanceKind: InstanceKind.Pod },
    target('instance:web-3', K.Instance, S.Down, ['prod'], 'Restarting'), // stored before kinds were kept
  ]);
  db = createPrismaClient(gw.database.databaseUrl);
  const events = new StatusEventsRepository(db);
  await runInTransaction(db, (tx) =>
    events.insertMany(
      tx,
      Array.from({ length: 7 }, (_, i) => ({
        targetId: i % 2 ? 'check:b' : 'instance:web-2',
        kind: i % 2 ? K.Check : K.Instance,
        location: null,
        from: S.Up,
        to: S.Down,
        reason: `event ${i}`,
        at: NOW - (7 - i) * 60_000,
        sequence: i + 1,
      })),
    ),
  );
});
afterAll(async () => {
  await db?.$disconnect();
  await gw?.close();
});

const get = <T>(path: string, as = token) => gw.request<T>('GET', path, { token: as });

describe('GET /api/v1/status/summary', () => {
  it('counts every target by status and by kind, whatever a list filters, with the firing alerts count (none here)', async () => {
    const res = await get<StatusSummaryResponse>('/api/v1/status/summary');
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(6);
    expect(res.body.byStatus).toEqual({
      [S.Up]: 2,
      [S.Down]: 3,
      [S.Partial]: 0,
      [S.Stale]: 1,
      [S.Paused]: 0,
      [S.Unknown]: 0,
    });
    expect(res.body.byKind).toMatchObject({ [K.Check]: 2, [K.Host]: 1, [K.Instance]: 3 });
    expect(res.body.alerts).toEqual({ firing: 0 });
    expect(Date.parse(res.body.generatedAt)).not.toBeNaN();
  });
});

describe('GET /api/v1/status/events', () => {
  it('pages the site-wide events newest first, and filters by target', async () => {
    const first = await get<StatusEventsResponse>('/api/v1/status/events?limit=3');
    expect(first.status).toBe(200);
    expect(first.body.items.map((e) => e.reason)).toEqual(['event 6', 'event 5', 'event 4']);
    expect(first.body.items[0]).toMatchObject({ targetId: 'instance:web-2', kind: K.Instance, from: S.Up, to: S.Down });
    const seen = [...first.body.items];
    let cursor = first.body.nextCursor;
    while (cursor) {
      const page = await get<StatusEventsResponse>(`/api/v1/status/events?limit=3&cursor=${cursor}`);
      seen.push(...page.body.items);
      cursor = page.body.nextCursor;
    }
    expect(seen.map((e) => e.reason)).toEqual([6, 5, 4, 3, 2, 1, 0].map((i) => `event ${i}`));
    const one = await get<StatusEventsResponse>('/api/v1/status/events?targetId=check:b');
    expect(one.body.items.map((e) => e.reason)).toEqual(['event 5', 'event 3', 'event 1']);
    expect(one.body.nextCursor).toBeNull();
  });

  it.each([
    '1_x',
    `1_${'0'.repeat(36)}`,
    `1_${'-'.repeat(36)}`,
    '1_0000000-0000-0000-0000-0000000000000',
    // Its time past 9999 (up to 15 digits: year 33658), which Postgres refused as given: a 500.
    '999999999999999_00000000-0000-1000-8000-000000000000',
    '253402300800000_00000000-0000-1000-8000-000000000000',
  ])('names a bad cursor (%s), never a 500', async (cursor) => {
    const res = await get<ApiErrorBody>(`/api/v1/status/events?cursor=${encodeURIComponent(cursor)}`);
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path)).toEqual(['cursor']);
  });
});

describe('GET /api/v1/instances', () => {
  it('lists pushed instances only, with their lifecycle, filtered by status and tag', async () => {
    const all = await get<InstanceListResponse>('/api/v1/instances');
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(3);
    expect(all.body.items.map((i) => [i.instanceId, i.lifecycle])).toEqual([
      ['web-1', 'Running'],
      ['web-2', 'Failed'],
      ['web-3', 'Restarting'],
    ]);
    const down = await get<InstanceListResponse>('/api/v1/instances?status=DOWN&tag=prod');
    expect(down.body.items.map((i) => i.id)).toEqual(['instance:web-3']);
    // In any case, as /targets and /hosts take it.
    const lower = await get<InstanceListResponse>('/api/v1/instances?status=down&tag=prod');
    expect([lower.status, lower.body.items.map((i) => i.id)]).toEqual([200, ['instance:web-3']]);
    const bad = await get<ApiErrorBody>('/api/v1/instances?status=SLEEPY');
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/status/);
  });

  it('says what each instance is and filters by it (any of a comma-separated list, in any case)', async () => {
    const all = await get<InstanceListResponse>('/api/v1/instances');
    expect(all.body.items.map((i) => [i.instanceId, i.instanceKind])).toEqual([
      ['web-1', 'container'],
      ['web-2', 'pod'],
      ['web-3', null],
    ]);
    const containers = await get<InstanceListResponse>('/api/v1/instances?kind=container');
    expect(containers.body.items.map((i) => i.id)).toEqual(['instance:web-1']);
    expect(containers.body.total).toBe(1);
    const either = await get<InstanceListResponse>('/api/v1/instances?kind=Pod,container&status=DOWN');
    expect(either.body.items.map((i) => i.id)).toEqual(['instance:web-2']);
    // Only pushed instances' own kinds: a target kind is not one (the targets list takes those).
    for (const kind of ['check', 'vm']) {
      const bad = await get<ApiErrorBody>(`/api/v1/instances?kind=${kind}`);
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/kind/);
    }
  });
});
