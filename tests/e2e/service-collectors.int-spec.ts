import { connect, type ChannelModel } from 'amqplib';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import type { CheckMetric, HistoryResponse, TargetView } from '@fleetwatch/contracts';
import { testEnv, waitFor } from '@fleetwatch/testing';
import { GatewayClient } from './gateway-client';
import { createSite, type E2eSite } from './site-launcher';

// Service collectors end to end (issue 16), on the running services: checks created at the
// gateway (POST and YAML import) go through sync-orchestrator's versioned configuration to a
// collector's assignment; its runs read the local Redis, Postgres and RabbitMQ and publish
// results with metrics; the aggregator stores them in check_results.metrics and as the
// location's latest figures; the targets API returns them (GET /targets/{id} per location,
// raw history points).

jest.setTimeout(300_000);

let site: E2eSite;
let gw: GatewayClient;
let redis: Redis;
let pg: Client;
let amqp: ChannelModel;
const env = testEnv();
const hashKey = `fwtest-${env.runId}-e2e-clients`;
const EXCHANGE = 'e2e-orders';

beforeAll(async () => {
  redis = new Redis(env.redisUrl);
  await redis.hset(hashKey, { c1: 'active', c2: 'active', c3: 'paused', c4: 'blocked', c5: 'deactivated' });
  site = await createSite('service-collectors');
  pg = new Client({ connectionString: site.db.databaseUrl });
  pg.on('error', () => undefined);
  await pg.connect();
  amqp = await connect(site.vhost.amqpUrl);
  const ch = await amqp.createChannel();
  await ch.assertExchange(EXCHANGE, 'topic', { durable: false });
  await Promise.all([site.start('sync-orchestrator'), site.start('aggregator'), site.start('api-gateway')]);
  await site.start('collector', {
    name: 'collector-eu',
    env: { FLEETWATCH_LOCATION: 'eu', COLLECTOR_HOST_ID: 'e2e-svc', COLLECTOR_SPOOL_DIR: 'spool' },
  });
  gw = await GatewayClient.login(site.service('api-gateway').url);
});

afterAll(async () => {
  // Our own clients first: dropping the site's database and vhost ends their sessions.
  await pg?.end().catch(() => undefined);
  await amqp?.close().catch(() => undefined);
  await site?.stop();
  await redis?.del(hashKey);
  redis?.disconnect();
});

const value = (metrics: CheckMetric[] | undefined, name: string, labels: Record<string, string> = {}) =>
  metrics?.find((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;

async function upWithMetrics(targetId: string, has: (m: CheckMetric[]) => boolean): Promise<CheckMetric[]> {
  let last: TargetView | null = null;
  const found = await waitFor(
    async () => {
      last = await gw.target(targetId);
      const m = last?.locations.find((l) => l.location === 'eu')?.metrics;
      return last?.status === 'UP' && m && has(m) ? m : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 250, description: `${targetId} UP with metrics` },
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last seen: ${JSON.stringify(last)?.slice(0, 500)}`);
  });
  return found;
}

describe('service collectors through the configuration path', () => {
  it('redis-stats created with POST: counts by client state in live state, history and check_results', async () => {
    const u = new URL(env.redisUrl);
    const check = await gw.createCheck({
      name: 'e2e redis clients',
      type: 'redis-stats',
      host: u.hostname,
      port: Number(u.port || 6379),
      intervalSeconds: 1,
      timeoutSeconds: 1,
      keys: [{ key: hashKey }],
      conditions: [`metric("redis_key_hash_values", {"key": "${hashKey}", "value": "blocked"}) < 5`],
    });
    expect(check).toMatchObject({ type: 'redis-stats', targetId: `check:${check.id}` });
    const latest = await upWithMetrics(check.targetId, (m) => value(m, 'redis_up') === 1);
    expect(value(latest, 'redis_key_hash_values', { key: hashKey, value: 'active' })).toBe(2);
    expect(value(latest, 'redis_key_hash_values', { key: hashKey, value: 'deactivated' })).toBe(1);
    expect(value(latest, 'redis_connected_clients')).toBeGreaterThan(0);

    const stored = await pg.query<{ metrics: CheckMetric[] }>(
      'SELECT metrics FROM check_results WHERE target_id = $1 AND metrics IS NOT NULL ORDER BY occurred_at DESC LIMIT 1',
      [check.targetId],
    );
    expect(value(stored.rows[0].metrics, 'redis_key_hash_values', { key: hashKey, value: 'paused' })).toBe(1);

    const history = await gw.request<HistoryResponse>(
      'GET',
      `/api/v1/targets/${encodeURIComponent(check.targetId)}/history?minutes=5`,
    );
    expect(history.status).toBe(200);
    const withMetrics = history.body.points.filter((p) => p.metrics);
    expect(withMetrics.length).toBeGreaterThan(0);
    expect(value(withMetrics[0].metrics, 'redis_key_hash_values', { key: hashKey, value: 'blocked' })).toBe(1);
  });

  it('postgres-stats and a rabbitmq-tap from a YAML import: connections, sizes; tap latency from published payloads', async () => {
    const db = new URL(site.db.databaseUrl);
    const amqpUrl = new URL(site.vhost.amqpUrl);
    const yaml = [
      'checks:',
      '  e2e postgres:',
      '    type: postgres-stats',
      `    host: ${db.hostname}`,
      `    port: ${Number(db.port || 5432)}`,
      `    user: ${decodeURIComponent(db.username || 'postgres')}`,
      '    intervalSeconds: 1',
      '    timeoutSeconds: 1',
      '  e2e tap:',
      '    type: rabbitmq-tap',
      `    host: ${amqpUrl.hostname}`,
      `    port: ${Number(amqpUrl.port || 5672)}`,
      `    vhost: ${JSON.stringify(decodeURIComponent(amqpUrl.pathname.slice(1)))}`,
      `    exchange: ${EXCHANGE}`,
      '    routingKey: "order.#"',
      '    timestampPath: $.sentAt',
      '    intervalSeconds: 1',
      '    timeoutSeconds: 1',
      '',
    ].join('\n');
    const imported = await gw.request<{ version: number }>('POST', '/api/v1/config/import', yaml);
    expect([imported.status, imported.text]).toEqual([200, expect.any(String)]);
    const list = await gw.request<{ items: Array<{ name: string; targetId: string }> }>('GET', '/api/v1/checks');
    const byName = new Map(list.body.items.map((c) => [c.name, c.targetId]));

    const pgMetrics = await upWithMetrics(byName.get('e2e postgres') as string, (m) => value(m, 'pg_up') === 1);
    expect(value(pgMetrics, 'pg_database_size_bytes', { database: db.pathname.slice(1) })).toBeGreaterThan(0);
    expect(value(pgMetrics, 'pg_connections_total')).toBeGreaterThan(0);

    const tapTarget = byName.get('e2e tap') as string;
    await upWithMetrics(tapTarget, (m) => value(m, 'rabbitmq_tap_up') === 1);
    const ch = await amqp.createChannel();
    // Published until some run's window has seen stamped payloads (runs every second).
    const stamped = await waitFor(
      async () => {
        for (let i = 0; i < 5; i++)
          ch.publish(EXCHANGE, 'order.created', Buffer.from(JSON.stringify({ sentAt: Date.now() - 250 })));
        const rows = await pg.query<{ metrics: CheckMetric[] }>(
          `SELECT metrics FROM check_results WHERE target_id = $1 AND metrics @> '[{"name": "rabbitmq_tap_latency_samples"}]'
             AND EXISTS (SELECT 1 FROM jsonb_array_elements(metrics) e WHERE e->>'name' = 'rabbitmq_tap_latency_p50_ms')`,
          [tapTarget],
        );
        return rows.rows[0]?.metrics;
      },
      { timeoutMs: 60_000, intervalMs: 500, description: 'a tap result with latencies in history' },
    );
    expect(value(stamped, 'rabbitmq_tap_latency_p50_ms')).toBeGreaterThanOrEqual(250);
    expect(value(stamped, 'rabbitmq_tap_latency_max_ms')).toBeLessThan(60_000);
    expect(value(stamped, 'rabbitmq_tap_messages')).toBeGreaterThan(0);
  });
});
