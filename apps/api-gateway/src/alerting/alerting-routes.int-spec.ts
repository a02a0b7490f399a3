import type {
  AlertRuleDefinition,
  ApiErrorBody,
  AuditEntry,
  Channel,
  CreateApiKeyResponse,
  MaintenanceWindowDefinition,
  Page,
  SilenceDefinition,
  Subscription,
} from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { rmSync } from 'node:fs';
import { Client } from 'pg';
import { ADMIN_PASSWORD, type GatewayHarness, startGateway } from '../int-spec.helpers';
import { privateOwnerDist, startOwnerProcess, type OwnerProcess } from '../checks/owner-process.int-helpers';

// Alert configuration through the gateway to its owner: sync-orchestrator built from today's sources
// and run as a process (default rules seeded, an encryption key set, logging at info). Who may do
// what (401 / 403 per role and key scope), what the owner refuses and how it reads over HTTP, that
// secrets never come back nor reach the owner's log (a canary), the Prometheus export, and 503 when
// the owner does not answer.

jest.setTimeout(150_000);

let gw: GatewayHarness;
let owner: OwnerProcess;
let dist: string;
const tokens: Record<'admin' | 'operator' | 'viewer' | 'readKey' | 'writeKey', string> = {} as never;
const CANARY = 'zz-canary-5e1f-secret';

beforeAll(async () => {
  gw = await startGateway(testing, 'alerting', { env: { GATEWAY_RPC_TIMEOUT_MS: '3000' } });
  dist = await privateOwnerDist(`owner-alerting-${testing.testEnv().runId}`);
  owner = await startOwnerProcess(
    dist,
    {
      databaseUrl: gw.database.databaseUrl,
      amqpUrl: gw.config.amqpUrl,
      redisUrl: gw.config.redisUrl,
      redisPrefix: `${testing.testEnv().redisPrefix}owner-alerting:`,
    },
    { FLEETWATCH_DEFAULT_ALERT_RULES: 'true', LOG_LEVEL: 'info' },
  );
  tokens.admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const) {
    await gw.request('POST', '/api/v1/users', {
      token: tokens.admin,
      body: { username: role, password: `${role}-password`, role },
    });
    tokens[role] = await gw.login(role, `${role}-password`);
  }
  for (const [name, scope] of [
    ['readKey', 'read'],
    ['writeKey', 'write'],
  ] as const) {
    const key = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
      token: tokens.admin,
      body: { name: `ci-${scope}`, scopes: [scope] },
    });
    tokens[name] = key.body.key;
  }
});

afterAll(async () => {
  await owner?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

const rule = {
  name: 'API slow',
  condition: { type: 'metric', metric: { kind: 'latency_p95_ms' }, op: 'above', threshold: 300 },
  for: '5m',
};

async function waitForDefaults(): Promise<Page<AlertRuleDefinition>> {
  for (let i = 0; i < 50; i++) {
    const res = await gw.request<Page<AlertRuleDefinition>>('GET', '/api/v1/alert-rules', { token: tokens.viewer });
    if (res.status === 200 && res.body.items.length >= 6) return res.body;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('default rules were not seeded');
}

describe('alert rules over REST', () => {
  it('the shipped default rules are there after the first start, written by system', async () => {
    const page = await waitForDefaults();
    expect(page.items.map((r) => r.id)).toEqual(
      expect.arrayContaining(['default.target-down', 'default.host-cpu-high']),
    );
    const audit = await gw.request<Page<AuditEntry>>('GET', '/api/v1/config/audit?subject=default.target-down', {
      token: tokens.admin,
    });
    expect(audit.body.items[0]).toMatchObject({ action: 'alert-rule.create', actor: 'system (system:defaults)' });
  });

  it('who may: no token 401, viewer and read keys read but not write (403), operators and write keys write', async () => {
    for (const path of ['/api/v1/alert-rules', '/api/v1/channels', '/api/v1/silences', '/api/v1/maintenance-windows'])
      expect((await gw.request('GET', path)).status).toBe(401);
    expect((await gw.request('GET', '/api/v1/alert-rules/prometheus')).status).toBe(401);
    for (const token of [tokens.viewer, tokens.readKey]) {
      expect((await gw.request('GET', '/api/v1/alert-rules', { token })).status).toBe(200);
      expect((await gw.request('POST', '/api/v1/alert-rules', { token, body: rule })).status).toBe(403);
      expect((await gw.request('DELETE', '/api/v1/alert-rules/default.target-down', { token })).status).toBe(403);
      expect((await gw.request('POST', '/api/v1/silences', { token, body: {} })).status).toBe(403);
      expect((await gw.request('POST', '/api/v1/channels', { token, body: {} })).status).toBe(403);
      expect((await gw.request('POST', '/api/v1/maintenance-windows', { token, body: {} })).status).toBe(403);
    }
    const byKey = await gw.request<AlertRuleDefinition>('POST', '/api/v1/alert-rules', {
      token: tokens.writeKey,
      body: { ...rule, name: 'by key' },
    });
    expect(byKey.status).toBe(201);
    expect(
      (await gw.request('DELETE', `/api/v1/alert-rules/${byKey.body.id}`, { token: tokens.writeKey })).status,
    ).toBe(204);
  });

  it('create 201 (ETag, Location), read, stale If-Match 409 with the current version, patch, delete 204, then 404', async () => {
    const created = await gw.request<AlertRuleDefinition>('POST', '/api/v1/alert-rules', {
      token: tokens.operator,
      body: rule,
    });
    expect(created.status).toBe(201);
    const { id, version } = created.body;
    expect(created.headers.get('etag')).toBe(`"${version}"`);
    expect(created.headers.get('location')).toBe(`/api/v1/alert-rules/${id}`);
    const got = await gw.request<AlertRuleDefinition>('GET', `/api/v1/alert-rules/${id}`, { token: tokens.viewer });
    expect(got.body).toEqual(created.body);

    const stale = await gw.request<ApiErrorBody>('PUT', `/api/v1/alert-rules/${id}`, {
      token: tokens.operator,
      headers: { 'if-match': `"${version - 1}"` },
      body: { ...rule, severity: 'critical' },
    });
    expect(stale.status).toBe(409);
    expect(stale.body.error.currentVersion).toBe(version);
    const patched = await gw.request<AlertRuleDefinition>('PATCH', `/api/v1/alert-rules/${id}`, {
      token: tokens.operator,
      headers: { 'if-match': `"${version}"` },
      body: { severity: 'critical' },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ severity: 'critical', version: version + 1 });
    expect((await gw.request('DELETE', `/api/v1/alert-rules/${id}`, { token: tokens.operator })).status).toBe(204);
    expect((await gw.request('GET', `/api/v1/alert-rules/${id}`, { token: tokens.viewer })).status).toBe(404);
  });

  it('refusals name the field: a bad body 400 from the owner, a bad id 400 at the gateway', async () => {
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/alert-rules', {
      token: tokens.operator,
      body: { ...rule, condition: { type: 'status', statuses: ['UP'] }, annotations: { summary: '{{ x ' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(['condition.statuses.0']));
    const badId = await gw.request<ApiErrorBody>('GET', '/api/v1/alert-rules/has%20space', { token: tokens.viewer });
    expect(badId.status).toBe(400);
    expect(badId.body.error.issues?.[0].path).toBe('id');
    const notObject = await gw.request<ApiErrorBody>('POST', '/api/v1/alert-rules', {
      token: tokens.operator,
      body: [1],
    });
    expect(notObject.status).toBe(400);
  });

  it('GET /alert-rules/prometheus: the stored rules as a rule file (text/yaml)', async () => {
    const res = await gw.request('GET', '/api/v1/alert-rules/prometheus', { token: tokens.viewer });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/yaml/);
    expect(res.text).toMatch(/^groups:/m);
    expect(res.text).toContain('fleetwatch_target_status');
    expect(Number(res.headers.get('x-fleetwatch-rules-exported'))).toBeGreaterThanOrEqual(3);
  });
});

describe('channels over REST', () => {
  it('secrets are write-only: answers redacted, kept on a PUT without them, never in the owner log', async () => {
    const created = await gw.request<Channel>('POST', '/api/v1/channels', {
      token: tokens.operator,
      body: { type: 'webhook', name: 'ops', url: 'https://hooks.example.com/in', secret: CANARY },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ secret: { set: true }, bearerToken: { set: false } });
    const put = await gw.request<Channel>('PUT', `/api/v1/channels/${created.body.id}`, {
      token: tokens.operator,
      body: { type: 'webhook', name: 'ops', url: 'https://hooks.example.com/other' },
    });
    expect(put.body).toMatchObject({ url: 'https://hooks.example.com/other', secret: { set: true } });
    const list = await gw.request('GET', '/api/v1/channels', { token: tokens.viewer });
    const audit = await gw.request('GET', `/api/v1/config/audit?subject=${created.body.id}`, { token: tokens.admin });
    const exported = await gw.request('GET', '/api/v1/config/export', { token: tokens.admin });
    for (const text of [created.text, put.text, list.text, audit.text, exported.text])
      expect(text).not.toContain(CANARY);
    expect(owner.output()).not.toContain(CANARY);

    const missing = await gw.request<ApiErrorBody>('POST', '/api/v1/channels', {
      token: tokens.operator,
      body: { type: 'slack', name: 'no url' },
    });
    expect(missing.status).toBe(400);
    expect(missing.body.error.issues?.map((i) => i.path)).toEqual(['url']);
    // Test-send itself goes to the aggregator (channel-test.int-spec.ts); viewers may not.
    expect(
      (await gw.request('POST', `/api/v1/channels/${created.body.id}/test`, { token: tokens.viewer })).status,
    ).toBe(403);
  });
});

describe('rate-limit pauses over REST', () => {
  it('a paused channel or subscription answers pausedUntil (null when not paused); a PATCH/PUT that changes it ends the pause', async () => {
    const sql = new Client({ connectionString: gw.database.databaseUrl });
    await sql.connect();
    try {
      const pauseUntil = async (table: string, key: string, id: string) =>
        (
          await sql.query<{ until: Date }>(
            `INSERT INTO ${table} (${key}, paused_until, http_status) VALUES ($1, now() + interval '10 minutes', 429)
             RETURNING paused_until AS until`,
            [id],
          )
        ).rows[0].until.toISOString();
      const read = { token: tokens.viewer };

      const ch = await gw.request<Channel>('POST', '/api/v1/channels', {
        token: tokens.operator,
        body: { type: 'webhook', name: 'limited', url: 'https://hooks.example.com/limited' },
      });
      expect(ch.body.pausedUntil).toBeNull();
      const chUntil = await pauseUntil('alert_channel_pauses', 'channel_id', ch.body.id);
      expect((await gw.request<Channel>('GET', `/api/v1/channels/${ch.body.id}`, read)).body.pausedUntil).toBe(chUntil);
      const chList = await gw.request<Page<Channel>>('GET', '/api/v1/channels', read);
      expect(chList.body.items.find((c) => c.id === ch.body.id)?.pausedUntil).toBe(chUntil);
      const off = await gw.request<Channel>('PATCH', `/api/v1/channels/${ch.body.id}`, {
        token: tokens.operator,
        body: { enabled: false },
      });
      expect(off.status).toBe(200);
      expect(off.body.pausedUntil).toBeNull();
      expect((await gw.request<Channel>('GET', `/api/v1/channels/${ch.body.id}`, read)).body.pausedUntil).toBeNull();

      const spec = { name: 'limited', url: 'https://hooks.example.com/sub' };
      const sub = await gw.request<Subscription>('POST', '/api/v1/subscriptions', {
        token: tokens.operator,
        body: { ...spec, secret: 'a signing secret 0123' },
      });
      expect(sub.status).toBe(201);
      expect(sub.body.pausedUntil).toBeNull();
      const subUntil = await pauseUntil('subscription_pauses', 'subscription_id', sub.body.id);
      const got = await gw.request<Subscription>('GET', `/api/v1/subscriptions/${sub.body.id}`, read);
      expect(got.body.pausedUntil).toBe(subUntil);
      const subList = await gw.request<Page<Subscription>>('GET', '/api/v1/subscriptions', read);
      expect(subList.body.items.find((x) => x.id === sub.body.id)?.pausedUntil).toBe(subUntil);
      const fixed = await gw.request<Subscription>('PUT', `/api/v1/subscriptions/${sub.body.id}`, {
        token: tokens.operator,
        body: { ...spec, url: 'https://hooks.example.com/sub-fixed' },
      });
      expect(fixed.status).toBe(200);
      expect(fixed.body.pausedUntil).toBeNull();
      expect(
        (await gw.request<Subscription>('GET', `/api/v1/subscriptions/${sub.body.id}`, read)).body.pausedUntil,
      ).toBeNull();
    } finally {
      await sql.end();
    }
  });
});

describe('silences and maintenance windows over REST', () => {
  it('a silence is authored by the caller, listed by state, expired and deleted', async () => {
    const now = Date.now();
    const created = await gw.request<SilenceDefinition>('POST', '/api/v1/silences', {
      token: tokens.operator,
      body: {
        matchers: [{ name: 'severity', op: '=', value: 'critical' }],
        startsAt: new Date(now - 1000).toISOString(),
        endsAt: new Date(now + 3_600_000).toISOString(),
        comment: 'maintenance of the router',
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ createdBy: 'operator', state: 'active' });
    const active = await gw.request<Page<SilenceDefinition>>('GET', '/api/v1/silences?state=active', {
      token: tokens.viewer,
    });
    expect(active.body.items.map((s) => s.id)).toEqual([created.body.id]);
    const expired = await gw.request<SilenceDefinition>('POST', `/api/v1/silences/${created.body.id}/expire`, {
      token: tokens.operator,
    });
    expect(expired.body.state).toBe('expired');
    expect((await gw.request('GET', '/api/v1/silences?state=bogus', { token: tokens.viewer })).status).toBe(400);
    expect((await gw.request('DELETE', `/api/v1/silences/${created.body.id}`, { token: tokens.operator })).status).toBe(
      204,
    );
    expect((await gw.request('GET', `/api/v1/silences/${created.body.id}`, { token: tokens.viewer })).status).toBe(404);
  });

  it('a silence that has already ended is a 400 naming endsAt (as in Alertmanager), and nothing is listed', async () => {
    const now = Date.now();
    const before = await gw.request<Page<SilenceDefinition>>('GET', '/api/v1/silences', { token: tokens.viewer });
    const past = await gw.request<ApiErrorBody>('POST', '/api/v1/silences', {
      token: tokens.operator,
      body: {
        matchers: [{ name: 'severity', op: '=~', value: '(?i)critical' }],
        startsAt: new Date(now - 7_200_000).toISOString(),
        endsAt: new Date(now - 3_600_000).toISOString(),
        comment: 'yesterday',
      },
    });
    expect(past.status).toBe(400);
    expect(past.body.error.issues).toEqual([
      { path: 'endsAt', message: expect.stringMatching(/^can't be in the past/) },
    ]);
    const after = await gw.request<Page<SilenceDefinition>>('GET', '/api/v1/silences', { token: tokens.viewer });
    expect(after.body.items).toEqual(before.body.items);
  });

  it('a recurring window per tag; a bad cron is a 400 naming schedule.cron', async () => {
    const created = await gw.request<MaintenanceWindowDefinition>('POST', '/api/v1/maintenance-windows', {
      token: tokens.operator,
      body: {
        name: 'nightly',
        scope: { tags: ['db'] },
        schedule: { type: 'recurring', cron: '0 2 * * *', duration: '1h' },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ createdBy: 'operator', schedule: { timezone: 'UTC' } });
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/maintenance-windows', {
      token: tokens.operator,
      body: { name: 'x', scope: { tags: ['db'] }, schedule: { type: 'recurring', cron: '0 25 * * *', duration: '1h' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues?.map((i) => i.path)).toEqual(['schedule.cron']);
  });

  it('a time whose UTC offset Postgres refuses (past ±15:59) is a 400 naming it, in a body and in a forged cursor', async () => {
    // zod takes offsets up to ±23:59; the silence's times and the cursors' went to Postgres as text: a 500 (22008).
    const forged = Buffer.from(
      JSON.stringify({ at: '2026-01-01T00:00:00+23:59', id: '0190f0e0-0000-7000-8000-000000000001' }),
    ).toString('base64url');
    for (const path of [`/api/v1/silences?cursor=${forged}`, `/api/v1/config/audit?cursor=${forged}`]) {
      const res = await gw.request<ApiErrorBody>('GET', path, { token: tokens.admin });
      expect({ path, status: res.status, issues: res.body.error?.issues }).toEqual({
        path,
        status: 400,
        issues: [{ path: 'cursor', message: 'unknown cursor' }],
      });
    }
    const now = Date.now();
    const bad = await gw.request<ApiErrorBody>('POST', '/api/v1/silences', {
      token: tokens.operator,
      body: {
        matchers: [{ name: 'severity', op: '=', value: 'critical' }],
        startsAt: new Date(now).toISOString(),
        endsAt: '2099-01-01T00:00:00-16:00',
        comment: 'offset',
      },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues).toEqual([{ path: 'endsAt', message: 'the UTC offset must be within ±15:59' }]);
  });
});

describe('owner away', () => {
  it('reads and writes answer 503 with Retry-After after the RPC timeout', async () => {
    await owner.stop();
    const answers = await Promise.all([
      gw.request<ApiErrorBody>('GET', '/api/v1/alert-rules', { token: tokens.viewer }),
      gw.request<ApiErrorBody>('POST', '/api/v1/silences', { token: tokens.operator, body: { comment: 'x' } }),
      gw.request<ApiErrorBody>('GET', '/api/v1/alert-rules/prometheus', { token: tokens.viewer }),
    ]);
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.headers.get('retry-after')).toBe('2');
    }
  });
});
