// Shared by the aggregator's integration tests (*.int-spec.ts): an isolated site
// (vhost, database, Redis prefix), a publisher standing in for status-ingest and
// the collector, a capture of status.changed, and direct Postgres/Redis reads.
import { Global, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { Client } from 'pg';
import {
  ExchangeName,
  InstanceKind,
  Messages,
  QueueName,
  RoutingKey,
  uuidv7,
  type Envelope,
  type PayloadInputOf,
  type StatusChangedPayload,
} from '@fleetwatch/contracts';
import { createBus, publishRequest, type Bus, type PublishRequest } from '@fleetwatch/messaging';
import { createLogger, FLEETWATCH_LOGGER, ReadinessRegistry } from '@fleetwatch/observability';
import { createIsolatedDatabase, createIsolatedVhost, testEnv, type IsolatedDatabase, type IsolatedVhost } from '@fleetwatch/testing';
import { AggregatorModule } from './aggregator.module';
import { loadAggregatorConfig } from './config';

export interface TestSite {
  vhost: IsolatedVhost;
  database: IsolatedDatabase;
  redisPrefix: string;
  /** Environment for the aggregator (in-process config or a spawned process). */
  env: Record<string, string>;
  bus: Bus;
  pg: Client;
  /** Redis with the site's prefix. */
  redis: Redis;
  /** status.changed messages as consumed from a queue bound to the routing key, in arrival order. */
  changes: StatusChangedPayload[];
  /** Live fan-out messages from Redis pub/sub. */
  fanOut: StatusChangedPayload[];
  dispose(): Promise<void>;
}

/** A fresh vhost, database and Redis prefix, with a publisher and observers on them. */
export async function createTestSite(name: string, env: Record<string, string> = {}): Promise<TestSite> {
  const t = testEnv();
  const [vhost, database] = await Promise.all([createIsolatedVhost(name), createIsolatedDatabase()]);
  const redisPrefix = `${t.redisPrefix}${name}:`;
  const bus = createBus({
    url: vhost.amqpUrl,
    source: { site: 'test', service: 'status-ingest', location: 'ingest-a' },
    name: `test-${name}`,
    queues: [QueueName.AggregatorObservations],
  });
  const changes: StatusChangedPayload[] = [];
  const capture = bus.consumer.consume(
    { name: `test.${name}.status-changed`, bindings: [{ exchange: ExchangeName.Events, routingKey: RoutingKey.StatusChanged }] },
    async (envelope: Envelope) => void changes.push(envelope.payload as StatusChangedPayload),
  );
  await capture.waitUntilActive(15_000);
  const pg = new Client({ connectionString: database.databaseUrl });
  await pg.connect();
  const redis = new Redis(t.redisUrl, { keyPrefix: redisPrefix });
  const sub = new Redis(t.redisUrl);
  const fanOut: StatusChangedPayload[] = [];
  sub.on('message', (_channel: string, message: string) => void fanOut.push(JSON.parse(message) as StatusChangedPayload));
  await sub.subscribe(`${redisPrefix}live:status`);
  return {
    vhost,
    database,
    redisPrefix,
    env: {
      AMQP_URL: vhost.amqpUrl,
      DATABASE_URL: database.databaseUrl,
      REDIS_URL: t.redisUrl,
      FLEETWATCH_REDIS_PREFIX: redisPrefix,
      FLEETWATCH_SITE: 'test',
      LOG_LEVEL: 'warn',
      FLEETWATCH_BOOT_TIMEOUT_SECONDS: '10',
      ...env,
    },
    bus,
    pg,
    redis,
    changes,
    fanOut,
    dispose: async () => {
      await bus.close().catch(() => undefined);
      await pg.end().catch(() => undefined);
      await flushPrefix(redis, redisPrefix);
      redis.disconnect();
      sub.disconnect();
      await Promise.allSettled([vhost.dispose(), database.dispose()]);
    },
  };
}

/** Deletes every key under the site's prefix (what a flushed Redis looks like to this site). */
export async function flushPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    // ioredis adds keyPrefix to commands: strip it from the scanned (full) names.
    if (keys.length) n += await redis.unlink(...keys.map((k) => k.slice(prefix.length)));
  } while (cursor !== '0');
  return n;
}

@Global()
@Module({
  providers: [ReadinessRegistry, { provide: FLEETWATCH_LOGGER, useValue: createLogger('aggregator', process.env.TEST_LOG_LEVEL ?? 'silent', process.stderr) }],
  exports: [ReadinessRegistry, FLEETWATCH_LOGGER],
})
class TestObservabilityModule {}

/** The aggregator in this process (no HTTP): what bootstrapService wires, minus the server. */
export async function startAggregator(env: Record<string, string>): Promise<INestApplicationContext> {
  const config = loadAggregatorConfig(env);
  @Module({ imports: [TestObservabilityModule, AggregatorModule.forRoot(config)] })
  class TestRoot {}
  return NestFactory.createApplicationContext(TestRoot, { logger: false });
}

export type StatusUpdateInput = PayloadInputOf<typeof Messages.StatusUpdate>;

let counter = 0;
/** A status.update payload as status-ingest publishes it. */
export function statusUpdate(instanceId: string, status: string, occurredAt: number, extra: Partial<StatusUpdateInput> = {}): StatusUpdateInput {
  return {
    updateId: `u-${Date.now()}-${++counter}`,
    instanceId,
    kind: InstanceKind.Container,
    status: status as StatusUpdateInput['status'],
    occurredAt: new Date(occurredAt).toISOString(),
    receivedAt: new Date(Math.max(occurredAt, Date.now())).toISOString(),
    ...extra,
  };
}

export function updateRequest(payload: StatusUpdateInput, id: string = uuidv7()): PublishRequest {
  return publishRequest(Messages.StatusUpdate, payload, { id });
}

export async function count(pg: Client, sql: string, params: unknown[] = []): Promise<number> {
  const r = await pg.query<{ n: string }>(sql, params);
  return Number(r.rows[0]?.n ?? 0);
}
