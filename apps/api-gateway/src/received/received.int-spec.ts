import { randomUUID } from 'node:crypto';
import {
  TargetStatus as S,
  type ApiErrorBody,
  type PingsResponse,
  type PushedUpdatesResponse,
} from '@fleetwatch/contracts';
import {
  createPrismaClient,
  DatabaseClient,
  HistoryRepository,
  runInTransaction,
  type StatusUpdateRow,
} from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';

// What a target received, read back as the aggregator stored it (written here through its repository): every field of
// a pushed update (SPEC §6: a 202 is a promise — what was accepted can be read back), a heartbeat ping's body.

let gw: GatewayHarness;
let token: string;
let db: DatabaseClient;
const NOW = Date.now();
const METADATA = { image: 'nginx:1.27', nested: { list: [1, 'two', { three: null }], big: 1e300 }, emoji: '💥' };

const update = (i: number, extra: Partial<StatusUpdateRow> = {}): StatusUpdateRow => ({
  messageId: randomUUID(),
  updateId: `u${i}`,
  targetId: 'instance:web-9',
  instanceId: 'web-9',
  kind: 'container',
  lifecycleStatus: i % 2 ? 'exited' : 'running',
  status: i % 2 ? S.Down : S.Up,
  source: 'docker-watcher@host-a',
  location: 'dc-1',
  occurredAt: NOW - (10 - i) * 1000,
  receivedAt: NOW - (10 - i) * 1000 + 5,
  labels: { team: 'core', 'app.kubernetes.io/name': 'web' },
  message: `message ${i}`,
  metadata: METADATA,
  ...extra,
});

const get = <T>(path: string, t: string | null = token) => gw.request<T>('GET', path, { token: t ?? undefined });

beforeAll(async () => {
  gw = await startGateway(testing, 'received');
  token = await gw.login('admin', ADMIN_PASSWORD);
  db = createPrismaClient(gw.database.databaseUrl);
  const repo = new HistoryRepository(db);
  await runInTransaction(db, async (tx) => {
    // Five updates; two of them at the same instant (the page boundary falls between them).
    await repo.insertStatusUpdates(tx, [
      update(1),
      update(2),
      update(3),
      update(4, { occurredAt: NOW - 6000 + 1 }),
      update(5, { occurredAt: NOW - 6000 + 1, source: null, labels: null, message: null, metadata: null }),
    ]);
    await repo.insertHeartbeatPings(tx, [
      {
        messageId: randomUUID(),
        monitorId: randomUUID(),
        targetId: 'check:nightly',
        location: 'push',
        signal: 'start',
        runId: 'run-1',
        receivedAt: NOW - 5000,
        body: null,
      },
      {
        messageId: randomUUID(),
        monitorId: randomUUID(),
        targetId: 'check:nightly',
        location: 'push',
        signal: 'fail',
        exitCode: 7,
        runId: 'run-1',
        receivedAt: NOW - 1000,
        body: 'pg_dump: disk full on /backup\nexit 1',
      },
    ]);
  });
});
afterAll(async () => {
  await db?.$disconnect();
  await gw?.close();
});

describe('GET /api/v1/targets/{id}/updates', () => {
  it('every field of every update as accepted, newest first', async () => {
    const res = await get<PushedUpdatesResponse>('/api/v1/targets/instance%3Aweb-9/updates');
    expect(res.status).toBe(200);
    expect(res.body.items.map((u) => u.updateId)).toEqual(['u5', 'u4', 'u3', 'u2', 'u1']);
    expect(res.body.items[1]).toEqual({
      updateId: 'u4',
      messageId: expect.any(String),
      instanceId: 'web-9',
      kind: 'container',
      lifecycle: 'running',
      status: 'UP',
      source: 'docker-watcher@host-a',
      location: 'dc-1',
      occurredAt: new Date(NOW - 6000 + 1).toISOString(),
      receivedAt: new Date(NOW - 6000 + 5).toISOString(),
      labels: { team: 'core', 'app.kubernetes.io/name': 'web' },
      message: 'message 4',
      metadata: METADATA,
    });
    expect(res.body.items[0]).toMatchObject({ source: null, labels: null, message: null, metadata: null });
    expect(res.body.nextCursor).toBeNull();
  });

  it('pages to the end without losing or repeating one, also between two updates of the same instant', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: PushedUpdatesResponse } = await get<PushedUpdatesResponse>(
        `/api/v1/targets/instance%3Aweb-9/updates?limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((u) => u.updateId));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['u5', 'u4', 'u3', 'u2', 'u1']);
  });

  it('401 without a token; 404 for a target nobody knows; a bad query is a 400 naming it', async () => {
    expect((await get('/api/v1/targets/instance%3Aweb-9/updates', null)).status).toBe(401);
    expect((await get('/api/v1/targets/instance%3Anobody/updates')).status).toBe(404);
    for (const [query, path] of [
      ['limit=0', 'limit'],
      ['limit=201', 'limit'],
      ['cursor=1_x', 'cursor'],
      ['cursor=999999999999999_1', 'cursor'],
      ['cursor=1_99999999999999999999', 'cursor'],
    ]) {
      const res = await get<ApiErrorBody>(`/api/v1/targets/instance%3Aweb-9/updates?${query}`);
      expect([query, res.status, res.body.error.issues?.map((i) => i.path)]).toEqual([query, 400, [path]]);
    }
    const nul = await get<ApiErrorBody>('/api/v1/targets/instance%3Aa%00b/updates');
    expect(nul.status).toBe(400);
  });
});

describe('GET /api/v1/targets/{id}/pings', () => {
  it("a monitor's pings newest first, with the body the job sent and the exit code of /ping/{token}/{code}", async () => {
    const res = await get<PingsResponse>('/api/v1/targets/check%3Anightly/pings');
    expect(res.status).toBe(200);
    expect(res.body.items.map((p) => [p.signal, p.exitCode, p.runId, p.body])).toEqual([
      ['fail', 7, 'run-1', 'pg_dump: disk full on /backup\nexit 1'],
      ['start', null, 'run-1', null],
    ]);
    expect(res.body.items[0].receivedAt).toBe(new Date(NOW - 1000).toISOString());
    const first = await get<PingsResponse>('/api/v1/targets/check%3Anightly/pings?limit=1');
    expect(first.body.items.map((p) => p.signal)).toEqual(['fail']);
    const rest = await get<PingsResponse>(`/api/v1/targets/check%3Anightly/pings?cursor=${first.body.nextCursor}`);
    expect(rest.body.items.map((p) => p.signal)).toEqual(['start']);
    expect(rest.body.nextCursor).toBeNull();
  });
});
