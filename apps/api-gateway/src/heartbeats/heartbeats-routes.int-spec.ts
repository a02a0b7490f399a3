import type {
  ApiErrorBody,
  AuditEntry,
  CheckDefinition,
  CreateHeartbeatResponse,
  HeartbeatView,
  Page,
} from '@fleetwatch/contracts';
import {
  createPrismaClient,
  hashPingToken,
  HeartbeatMonitorsRepository,
  pingTokenShapeOf,
  type DatabaseClient,
} from '@fleetwatch/persistence';
import * as testing from '@fleetwatch/testing';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';

// Heartbeat monitors are checks of type `push` (issue 15): the gateway's heartbeat routes
// create and delete them through their owner, sync-orchestrator (built from today's sources
// and run as a process on the gateway's database and vhost), which writes heartbeat_monitors
// with the check. What users see stays as it was: the same answer, the token once.

jest.setTimeout(120_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
let admin: string;
let db: DatabaseClient;
let sql: Client;

beforeAll(async () => {
  gw = await startGateway(testing, 'heartbeats');
  dist = await privateOwnerDist(`owner-heartbeats-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-heartbeats:`,
  });
  admin = await gw.login('admin', ADMIN_PASSWORD);
  db = createPrismaClient(gw.database.databaseUrl);
  sql = new Client({ connectionString: gw.database.databaseUrl });
  await sql.connect();
});

afterAll(async () => {
  await sql?.end();
  await db?.$disconnect();
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const createHeartbeat = (body: unknown) =>
  gw.request<CreateHeartbeatResponse & ApiErrorBody>('POST', '/api/v1/heartbeats', { token: admin, body });

describe('heartbeat routes → sync-orchestrator', () => {
  it('create → a push check with its monitor, token shown once, the same answer as before → list → delete', async () => {
    const created = await createHeartbeat({
      name: 'nightly backup',
      periodSeconds: 86400,
      graceSeconds: 600,
      maxRuntimeSeconds: 3600,
    });
    expect(created.status).toBe(201);
    const hb = created.body;
    // Exactly the keys and values of CreateHeartbeatResponse, nothing of the check besides.
    expect(hb).toEqual({
      id: expect.any(String),
      targetId: `check:${hb.id}`,
      name: 'nightly backup',
      periodSeconds: 86400,
      graceSeconds: 600,
      maxRuntimeSeconds: 3600,
      lastPingAt: null,
      lastStartAt: null,
      createdAt: expect.any(String),
      token: expect.any(String),
      pingUrl: `http://127.0.0.1:3001/ping/${hb.token}`,
    });
    // Checksummed, so the ingest edge refuses a mistyped one without a query.
    expect(pingTokenShapeOf(hb.token)).toBe('checksummed');
    const monitors = new HeartbeatMonitorsRepository(db);
    expect((await monitors.findByTokenHash(hashPingToken(hb.token)))?.id).toBe(hb.id);

    // It is a push check, versioned and audited as the user who made it.
    const check = await gw.request<CheckDefinition>('GET', `/api/v1/checks/${hb.id}`, { token: admin });
    expect(check.body).toMatchObject({ id: hb.id, type: 'push', name: 'nightly backup', periodSeconds: 86400 });
    const audit = await gw.request<Page<AuditEntry>>('GET', `/api/v1/config/audit?subject=${hb.id}`, {
      token: admin,
    });
    expect(audit.body.items.map((e) => [e.action, e.actor])).toEqual([
      ['check.create', expect.stringContaining('admin')],
    ]);

    // Listed as created (the list reads heartbeat_monitors), never with its token.
    const list = await gw.request<HeartbeatView[]>('GET', '/api/v1/heartbeats', { token: admin });
    const { token: _token, pingUrl: _url, ...view } = hb;
    expect(list.body.find((m) => m.id === hb.id)).toEqual(view);
    expect(list.text).not.toContain(hb.token);

    // Without maxRuntimeSeconds: null, as before.
    const short = await createHeartbeat({ name: 'hourly', periodSeconds: 3600, graceSeconds: 60 });
    expect(short.status).toBe(201);
    expect(short.body.maxRuntimeSeconds).toBeNull();

    expect((await gw.request('DELETE', `/api/v1/heartbeats/${hb.id}`, { token: admin })).status).toBe(204);
    expect(await monitors.findByTokenHash(hashPingToken(hb.token))).toBeNull();
    expect((await gw.request('GET', `/api/v1/checks/${hb.id}`, { token: admin })).status).toBe(404);
    const deleteAudit = await gw.request<Page<AuditEntry>>('GET', `/api/v1/config/audit?subject=${hb.id}`, {
      token: admin,
    });
    expect(deleteAudit.body.items.map((e) => e.action)).toEqual(['check.delete', 'check.create']);
    expect((await gw.request('DELETE', `/api/v1/heartbeats/${hb.id}`, { token: admin })).status).toBe(404);
  });

  it('names bad fields (the gateway refuses before the owner)', async () => {
    const res = await createHeartbeat({ name: 'x', periodSeconds: 0, graceSeconds: -1, maxRuntimeSeconds: 'long' });
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path).sort()).toEqual([
      'graceSeconds',
      'maxRuntimeSeconds',
      'periodSeconds',
    ]);
  });

  it('a name any check has is 409; heartbeat_monitors gets no row for it', async () => {
    const http = await gw.request<CheckDefinition>('POST', '/api/v1/checks', {
      token: admin,
      body: { name: 'api', type: 'http', url: 'http://127.0.0.1:8080/health', intervalSeconds: 30 },
    });
    expect(http.status).toBe(201);
    const clash = await createHeartbeat({ name: 'api', periodSeconds: 60, graceSeconds: 10 });
    expect(clash.status).toBe(409);
    expect(clash.body.error).toMatchObject({ code: 'conflict', message: expect.stringContaining('"api"') });
    expect((await createHeartbeat({ name: 'twice', periodSeconds: 60, graceSeconds: 10 })).status).toBe(201);
    expect((await createHeartbeat({ name: 'twice', periodSeconds: 60, graceSeconds: 10 })).status).toBe(409);
    const { rows } = await sql.query<{ name: string }>('SELECT name FROM heartbeat_monitors ORDER BY name');
    expect(rows.map((r) => r.name)).not.toContain('api');
    expect(rows.filter((r) => r.name === 'twice')).toHaveLength(1);

    // Deleting another type of check through the heartbeat routes: 404, the check stays.
    expect((await gw.request('DELETE', `/api/v1/heartbeats/${http.body.id}`, { token: admin })).status).toBe(404);
    expect((await gw.request('GET', `/api/v1/checks/${http.body.id}`, { token: admin })).status).toBe(200);
    expect((await gw.request('DELETE', '/api/v1/heartbeats/not-a-uuid', { token: admin })).status).toBe(404);
  });

  it('a monitor made before monitors were checks, not adopted yet: DELETE is 503 with Retry-After, never 404', async () => {
    const id = randomUUID();
    // As the gateway wrote them before issue 15 (the owner adopts such rows at start and every minute).
    await sql.query(
      `INSERT INTO heartbeat_monitors (id, target_id, name, token_hash, period_seconds, grace_seconds)
       VALUES ($1, $2, 'legacy', $3, 60, 10)`,
      [id, `check:${id}`, hashPingToken(randomUUID())],
    );
    const res = await gw.request<ApiErrorBody>('DELETE', `/api/v1/heartbeats/${id}`, { token: admin });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('60');
    expect(res.body.error.message).toContain('being adopted');
  });

  it('owner gone: create and delete answer 503 with Retry-After; the list still works', async () => {
    const kept = await createHeartbeat({ name: 'kept', periodSeconds: 60, graceSeconds: 10 });
    expect(kept.status).toBe(201);
    await owner.stop();
    const create = await createHeartbeat({ name: 'later', periodSeconds: 60, graceSeconds: 10 });
    expect(create.status).toBe(503);
    expect(Number(create.headers.get('retry-after'))).toBeGreaterThan(0);
    const del = await gw.request('DELETE', `/api/v1/heartbeats/${kept.body.id}`, { token: admin });
    expect(del.status).toBe(503);
    const list = await gw.request<HeartbeatView[]>('GET', '/api/v1/heartbeats', { token: admin });
    expect(list.status).toBe(200);
    expect(list.body.map((m) => m.name)).toContain('kept');
  });
});
