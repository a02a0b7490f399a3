import { createHash, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { connect } from 'amqplib';
import {
  memberReportSchema,
  memberSnapshotSchema,
  flowMetricsSchema,
  QueueName,
  type ApiErrorBody,
  type CreateApiKeyResponse,
  type FlowMetrics,
  type MemberReport,
  type MemberSnapshotView,
} from '@fleetwatch/contracts';
import { Pool } from 'pg';
import * as testing from '@fleetwatch/testing';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';
import { ADMIN_PASSWORD, GatewayHarness, startGateway } from '../int-spec.helpers';
import { brokerCountsViaManagement, brokerCountsViaPassive } from './broker-stats';
import { canonicalJson, SNAPSHOT_CACHE_MS } from './snapshot.service';

// The member endpoints every site answers its leader (SPEC §8), on the real gateway with
// the real configuration owner, Postgres, Redis and RabbitMQ (management plugin on).

jest.setTimeout(120_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
let pool: Pool;
let admin: string;
let ingestKey: string;
const ROUTES = ['/api/v1/status/report', '/api/v1/metrics/flow?minutes=5', '/api/v1/system/snapshot/current'];

beforeAll(async () => {
  gw = await startGateway(testing, 'fleet-member');
  dist = await privateOwnerDist(`owner-fleet-member-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(dist, {
    databaseUrl: gw.database.databaseUrl,
    amqpUrl: gw.config.amqpUrl,
    redisUrl: gw.config.redisUrl,
    redisPrefix: `${testing.testEnv().redisPrefix}owner-fleet-member:`,
  });
  pool = new Pool({ connectionString: gw.database.databaseUrl, max: 2 });
  admin = await gw.login('admin', ADMIN_PASSWORD);
  const key = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
    token: admin,
    body: { name: 'pusher', scopes: ['ingest'] },
  });
  ingestKey = key.body.key;
});

afterAll(async () => {
  await pool?.end();
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

describe('access', () => {
  it.each(ROUTES)('%s: 401 without a token, 403 for a key without a reading role', async (route) => {
    expect((await gw.request('GET', route)).status).toBe(401);
    const res = await gw.request<ApiErrorBody>('GET', route, { token: ingestKey });
    expect([res.status, res.body.error.code]).toEqual([403, 'forbidden']);
  });
});

describe('GET /api/v1/status/report', () => {
  it('reads queued and in-flight counts from RabbitMQ itself, both ways alike', async () => {
    const conn = await connect(gw.config.amqpUrl);
    const ch = await conn.createChannel();
    const q = QueueName.StatusIngestCommands;
    await ch.assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    for (let i = 0; i < 3; i++) ch.sendToQueue(q, Buffer.from(`m${i}`));
    // One delivered and not acked: in flight.
    await ch.prefetch(1);
    await new Promise<void>((resolve) => void ch.consume(q, () => resolve(), { noAck: false }));
    try {
      // The management API's counts lag by its stats interval (5 s by default).
      let report: MemberReport | undefined;
      for (let i = 0; i < 40; i++) {
        report = (await gw.request<MemberReport>('GET', '/api/v1/status/report', { token: admin })).body;
        const counted = report.broker?.queues.find((x) => x.name === q);
        if (report.broker?.inFlight === 1 && report.broker.queued === 2 && counted?.consumers === 1) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      const r = memberReportSchema.parse(report);
      expect(r.broker).toMatchObject({ source: 'management', inFlight: 1, queued: 2, deadLettered: 0 });
      expect(r.broker?.queues.find((x) => x.name === q)).toEqual({ name: q, ready: 2, unacked: 1, consumers: 1 });
      expect(r.errors).toMatchObject({ down: 0, deadLettered: 0 });
      expect(r.site).toBe(gw.config.site);
      expect(Object.keys(r.status).sort()).toEqual(['DOWN', 'PARTIAL', 'PAUSED', 'STALE', 'UNKNOWN', 'UP']);
      expect(r.components.find((c) => c.component === 'api-gateway')?.version).toEqual(expect.any(String));

      const passive = await brokerCountsViaPassive({ amqpUrl: gw.config.amqpUrl });
      expect(passive).toMatchObject({ source: 'passive', inFlight: null, queued: 2 });
      expect(passive.queues.find((x) => x.name === q)).toEqual({ name: q, ready: 2, unacked: null, consumers: 1 });
      await expect(
        brokerCountsViaManagement({ amqpUrl: gw.config.amqpUrl, managementUrl: 'http://guest:guest@127.0.0.1:1' }),
      ).rejects.toThrow();
    } finally {
      await conn.close();
    }
  });

  it('counts failed check results and stored rows from history', async () => {
    const now = Date.now();
    for (const ok of [true, false, false])
      await pool.query(
        `INSERT INTO check_results (message_id, check_id, target_id, location, ok, occurred_at)
         VALUES ($1, 'c1', 'check:c1', 'lab', $2, to_timestamp($3::float8 / 1000))`,
        [randomUUID(), ok, now - 1000],
      );
    const r = (await gw.request<MemberReport>('GET', '/api/v1/status/report', { token: admin })).body;
    expect(r.errors?.failedResults15m).toBe(2);
    expect(r.flow?.stored.count).toBe(3);
    expect(r.flow?.stored.bytes).toBeGreaterThan(0);
    expect(r.flow?.deleted).toEqual({ count: null, bytes: null });
  });
});

describe('GET /api/v1/metrics/flow', () => {
  it('one point a minute, oldest first, stored rows in their minute', async () => {
    const res = await gw.request<FlowMetrics>('GET', '/api/v1/metrics/flow?minutes=5', { token: admin });
    expect(res.status).toBe(200);
    const f = flowMetricsSchema.parse(res.body);
    expect(f.points).toHaveLength(5);
    expect(f.points.map((p) => Date.parse(p.at))).toEqual([...f.points.map((p) => Date.parse(p.at))].sort());
    expect(f.points.reduce((n, p) => n + (p.stored.count ?? 0), 0)).toBe(3);
    // The management plugin is on: ingress and egress are numbers (the test published above).
    expect(f.points.every((p) => typeof p.ingress.count === 'number')).toBe(true);
    expect(Object.keys(f.sources).sort()).toEqual(['deleted', 'egress', 'ingress', 'stored']);
  });

  it('refuses a bad window naming the field', async () => {
    const res = await gw.request<ApiErrorBody>('GET', '/api/v1/metrics/flow?minutes=0', { token: admin });
    expect(res.status).toBe(400);
    expect(res.body.error.issues?.map((i) => i.path)).toContain('minutes');
  });
});

describe('GET /api/v1/system/snapshot/current', () => {
  const snapshot = async () =>
    memberSnapshotSchema.parse(
      (await gw.request<MemberSnapshotView>('GET', '/api/v1/system/snapshot/current', { token: admin })).body,
    );

  it('checks by name, users and roles without hashes, versions; hash of the canonical areas; cached 5 s', async () => {
    const created = await gw.request('POST', '/api/v1/checks', {
      token: admin,
      body: { name: 'web', type: 'http', url: 'http://127.0.0.1:9/health', intervalSeconds: 45 },
    });
    expect(created.status).toBe(201);
    // An authenticated health page: the check's credential headers never reach the leader (another host).
    const authed = await gw.request('POST', '/api/v1/checks', {
      token: admin,
      body: {
        name: 'web-authed',
        type: 'http',
        url: 'http://127.0.0.1:9/private/health',
        headers: {
          Cookie: 'sid=canary-check-COOKIE',
          'Set-Cookie': 'x=canary-check-SETCOOKIE',
          Authorization: 'Bearer canary-check-BEARER',
          'X-Auth-Token': 'canary-check-XAUTH',
          'X-Trace': 'kept',
        },
      },
    });
    expect(authed.status).toBe(201);
    await gw.request('POST', '/api/v1/users', {
      token: admin,
      body: { username: 'olga', password: 'olga-password-1', role: 'operator' },
    });
    const channel = await gw.request('POST', '/api/v1/channels', {
      token: admin,
      body: { type: 'webhook', name: 'ops', url: 'https://hooks.example.com/in', secret: 'canary-channel-SECRET' },
    });
    expect(channel.status).toBe(201);
    const rule = await gw.request('POST', '/api/v1/alert-rules', {
      token: admin,
      body: {
        name: 'web down',
        condition: { type: 'status', statuses: ['DOWN'] },
        channels: [(channel.body as { id: string }).id],
      },
    });
    expect(rule.status).toBe(201);
    // A snapshot is served for up to SNAPSHOT_CACHE_MS (pinned below): read it until it has all of the above.
    await testing.waitFor(
      async () => {
        const { areas } = await snapshot();
        return (
          areas.checks.some((c) => c.key === 'web-authed') &&
          areas.usersAndRoles.some((u) => u.key === 'olga') &&
          areas.channels.some((c) => c.key === 'ops') &&
          areas.alertRules.some((r) => r.key === 'web down')
        );
      },
      {
        timeoutMs: SNAPSHOT_CACHE_MS + 500,
        intervalMs: 100,
        description: 'the snapshot with the new check, user, channel and rule',
      },
    );
    const text = (await gw.request('GET', '/api/v1/system/snapshot/current', { token: admin })).text;
    expect(text).not.toMatch(/argon2|passwordHash/);
    const s = await snapshot();
    expect(s.areas.checks).toEqual([
      expect.objectContaining({ key: 'web', type: 'http', intervalSeconds: 45 }),
      expect.objectContaining({ key: 'web-authed', headers: expect.objectContaining({ 'X-Trace': 'kept' }) }),
    ]);
    expect(text).not.toMatch(/canary-check-/);
    expect(s.areas.usersAndRoles).toEqual([
      { key: 'admin', role: 'admin' },
      { key: 'olga', role: 'operator' },
    ]);
    expect(s.areas.componentVersions.map((c) => c.key)).toContain('api-gateway');
    // The rule names its channel by name: its id is this site's own.
    expect(s.areas.alertRules).toEqual([expect.objectContaining({ key: 'web down', channels: ['ops'] })]);
    expect(s.areas.channels).toEqual([expect.objectContaining({ key: 'ops', type: 'webhook' })]);
    expect(text).not.toContain('canary-channel-SECRET');
    expect(s.hash).toBe(createHash('sha256').update(canonicalJson(s.areas)).digest('hex'));

    // The ETag is the quoted hash; a leader holding it gets a 304 without a body.
    const route = '/api/v1/system/snapshot/current';
    const whole = await gw.request('GET', route, { token: admin, headers: { 'if-none-match': '"x"' } });
    expect([whole.status, whole.headers.get('etag')]).toEqual([200, `"${s.hash}"`]);
    const unchanged = await gw.request('GET', route, { token: admin, headers: { 'if-none-match': `"${s.hash}"` } });
    expect([unchanged.status, unchanged.text, unchanged.headers.get('etag')]).toEqual([304, '', `"${s.hash}"`]);
    // Not without a reading role.
    expect((await gw.request('GET', route, { headers: { 'if-none-match': `"${s.hash}"` } })).status).toBe(401);

    // Within 5 s the same snapshot is served; after, the change shows.
    await gw.request('POST', '/api/v1/checks', {
      token: admin,
      body: { name: 'api', type: 'http', url: 'http://127.0.0.1:9/api', intervalSeconds: 60 },
    });
    expect((await snapshot()).hash).toBe(s.hash);
    await new Promise((r) => setTimeout(r, SNAPSHOT_CACHE_MS));
    const later = await snapshot();
    expect(later.hash).not.toBe(s.hash);
    expect(later.areas.checks.map((c) => c.key)).toEqual(['api', 'web', 'web-authed']);
  });
});
