import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type ChannelModel } from 'amqplib';
import {
  buildEnvelope,
  deadLetterQueueOf,
  ExchangeName,
  Messages,
  QueueName,
  RoutingKey,
  type ApiKeyView,
  type CreateApiKeyResponse,
} from '@fleetwatch/contracts';
import * as testing from '@fleetwatch/testing';
import { ADMIN_PASSWORD, startGateway, type GatewayHarness } from '../int-spec.helpers';

// API-key last use for keys used only at the ingest edge: status-ingest (built from today's sources, run as a
// process on the gateway's database and vhost) reports each key's newest use as `apikey.used`; the gateway, the
// only writer of api_keys, records it. Flushed every 200 ms here (INGEST_API_KEY_USE_FLUSH_MS), a minute by default.

jest.setTimeout(120_000);

const root = join(__dirname, '../../../..');

let gw: GatewayHarness;
let ingest: { url: string; output(): string; stop(): Promise<void> };
let dist: string;
let admin: string;
let amqp: ChannelModel;

async function startIngest(): Promise<typeof ingest> {
  return testing.spawnBuiltService({
    name: 'status-ingest',
    main: join(dist, 'dist/apps/status-ingest/src/main.js'),
    cwd: root,
    env: (port) => ({
      DATABASE_URL: gw.database.databaseUrl,
      AMQP_URL: gw.config.amqpUrl,
      REDIS_URL: gw.config.redisUrl,
      FLEETWATCH_REDIS_PREFIX: `${testing.testEnv().redisPrefix}ingest-key-use:`,
      STATUS_INGEST_PORT: String(port),
      FLEETWATCH_SITE: 'test-site',
      LOG_LEVEL: 'warn',
      INGEST_API_KEY_USE_FLUSH_MS: '200',
    }),
    readyTimeoutMs: 30_000,
    pollMs: 100,
    logTail: 6000,
  });
}

async function createKey(name: string, scopes: string[]): Promise<CreateApiKeyResponse> {
  const res = await gw.request<CreateApiKeyResponse>('POST', '/api/v1/api-keys', {
    token: admin,
    body: { name, scopes },
  });
  if (res.status !== 201 && res.status !== 200) throw new Error(`create key: ${res.status} ${res.text}`);
  return res.body;
}

async function lastUsedAt(id: string): Promise<string | null | undefined> {
  const res = await gw.request<ApiKeyView[]>('GET', '/api/v1/api-keys', { token: admin });
  expect(res.status).toBe(200);
  return res.body.find((k) => k.id === id)?.lastUsedAt;
}

async function push(key: string): Promise<void> {
  const res = await fetch(`${ingest.url}/api/v1/status/updates`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ instanceId: 'web-1', kind: 'container', status: 'running' }),
  });
  expect(res.status).toBeLessThan(300);
}

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline)
      throw new Error(`${what}: still ${JSON.stringify(v)} after ${ms} ms\n${ingest.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function publishRaw(routingKey: string, body: unknown): Promise<void> {
  const ch = await amqp.createConfirmChannel();
  try {
    ch.publish(ExchangeName.Events, routingKey, Buffer.from(JSON.stringify(body)), { persistent: true });
    await ch.waitForConfirms();
  } finally {
    await ch.close().catch(() => undefined);
  }
}

async function depth(queue: string): Promise<number> {
  const ch = await amqp.createChannel();
  try {
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await ch.close().catch(() => undefined);
  }
}

beforeAll(async () => {
  gw = await startGateway(testing, 'key-use');
  admin = await gw.login('admin', ADMIN_PASSWORD);
  dist = await testing.copyBuiltDistAsync(join(root, 'tmp', `ingest-key-use-${testing.testEnv().runId}`), {
    build: 'always',
    required: ['apps/status-ingest/src/main.js'],
  });
  ingest = await startIngest();
  amqp = await connect(gw.config.amqpUrl);
  amqp.on('error', () => undefined);
});

afterAll(async () => {
  await amqp?.close().catch(() => undefined);
  await ingest?.stop();
  await gw?.close();
  if (dist) rmSync(dist, { recursive: true, force: true });
});

describe('API-key last use at the ingest edge', () => {
  it('a key used only to push shows lastUsedAt in GET /api/v1/api-keys within seconds', async () => {
    const key = await createKey('pusher', ['ingest']);
    expect(await lastUsedAt(key.id)).toBeNull();
    const before = Date.now();
    await push(key.key);
    const seen = await until(
      'lastUsedAt',
      () => lastUsedAt(key.id),
      (v) => typeof v === 'string',
    );
    expect(Date.parse(seen as string)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(seen as string)).toBeLessThanOrEqual(Date.now() + 1000);
    // Nothing left behind: the report was taken and acked, nothing dead-lettered.
    await until(
      'queue drained',
      () => depth(QueueName.ApiGatewayApiKeyUse),
      (n) => n === 0,
    );
    expect(await depth(deadLetterQueueOf(QueueName.ApiGatewayApiKeyUse))).toBe(0);
  });

  it('only moves forward, acks reports for unknown keys, dead-letters invalid ones', async () => {
    const key = await createKey('pusher-2', ['ingest']);
    const source = { site: 'test-site', service: 'status-ingest' as const };
    const at = '2030-01-01T00:00:00.000Z';
    // A time ahead of the gateway's clock counts as now.
    await publishRaw(RoutingKey.ApiKeyUsed, buildEnvelope(Messages.ApiKeyUsed.type, 1, source, { keyId: key.id, at }));
    const first = await until(
      'lastUsedAt',
      () => lastUsedAt(key.id),
      (v) => typeof v === 'string',
    );
    expect(Date.parse(first as string)).toBeLessThanOrEqual(Date.now());
    // An older use does not move it back.
    await publishRaw(
      RoutingKey.ApiKeyUsed,
      buildEnvelope(Messages.ApiKeyUsed.type, 1, source, { keyId: key.id, at: '2001-01-01T00:00:00.000Z' }),
    );
    // A key that does not exist (deleted meanwhile): acked, ignored.
    await publishRaw(
      RoutingKey.ApiKeyUsed,
      buildEnvelope(Messages.ApiKeyUsed.type, 1, source, {
        keyId: '00000000-0000-4000-8000-000000000000',
        at: new Date().toISOString(),
      }),
    );
    await until(
      'queue drained',
      () => depth(QueueName.ApiGatewayApiKeyUse),
      (n) => n === 0,
    );
    expect(await lastUsedAt(key.id)).toBe(first);
    expect(await depth(deadLetterQueueOf(QueueName.ApiGatewayApiKeyUse))).toBe(0);
    // Not a UUID: dead-lettered.
    await publishRaw(
      RoutingKey.ApiKeyUsed,
      buildEnvelope(Messages.ApiKeyUsed.type, 1, source, { keyId: 'nope', at: new Date().toISOString() }),
    );
    await until(
      'dead-lettered',
      () => depth(deadLetterQueueOf(QueueName.ApiGatewayApiKeyUse)),
      (n) => n === 1,
    );
  });
});
