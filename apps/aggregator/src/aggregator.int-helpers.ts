// Shared by the aggregator's integration tests (*.int-spec.ts): a site on isolated
// resources the test makes with libs/testing (vhost, database, Redis prefix), a
// publisher standing in for status-ingest and the collector, a capture of
// status.changed, and direct Postgres/Redis reads. createIsolatedTestSite makes those
// resources itself; createTestSite takes them as arguments (for a spec that prepares
// the database, or routes it through a proxy, before the site starts).
import { join } from 'node:path';
import { Global, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Redis } from 'ioredis';
import { connect, type ChannelModel, type GetMessage } from 'amqplib';
import { Client } from 'pg';
import {
  deadLetterQueueOf,
  ExchangeName,
  InstanceKind,
  Messages,
  OBSERVATION_SHARDS,
  observationShardQueue,
  QueueName,
  RoutingKey,
  TargetIds,
  TargetStatus,
  uuidv7,
  type Envelope,
  type PayloadInputOf,
  type StatusChangedBatchPayload,
  type StatusChangedPayload,
} from '@fleetwatch/contracts';
import {
  createBus,
  observationShardQueueSpecs,
  publishRequest,
  type Bus,
  type PublishRequest,
} from '@fleetwatch/messaging';
import { LiveKeys } from '@fleetwatch/live-state';
import { createLogger, FLEETWATCH_LOGGER, ReadinessRegistry } from '@fleetwatch/observability';
import { copyBuiltDistAsync, createIsolatedDatabase, createIsolatedVhost, testEnv } from '@fleetwatch/testing';
import { AggregatorModule } from './aggregator.module';
import { loadAggregatorConfig } from './config';

/** The slice of a pg Client the tests use. */
export interface SqlClient {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<{ rows: R[]; rowCount: number | null }>;
  end(): Promise<void>;
}

/** Resources the test made for this site (libs/testing's createIsolatedVhost / createIsolatedDatabase). */
export interface TestInfra {
  vhost: { amqpUrl: string; dispose(): Promise<void> };
  database: { databaseUrl: string; dispose(): Promise<void> };
  redisUrl: string;
  /** Unique to this site (under the run's prefix). */
  redisPrefix: string;
  /** Connected to `database`. */
  pg: SqlClient;
}

export interface TestSite {
  vhost: TestInfra['vhost'];
  database: TestInfra['database'];
  redisPrefix: string;
  /** Environment for the aggregator (in-process config or a spawned process). */
  env: Record<string, string>;
  bus: Bus;
  pg: SqlClient;
  /** Redis with the site's prefix. */
  redis: Redis;
  /** Status events as consumed from a queue bound to status.changed(-batch), in arrival order (batches flattened). */
  changes: StatusChangedPayload[];
  /** How many status.changed(.batch) messages carried them, by message type. */
  changeMessages: Record<string, number>;
  /** Live fan-out messages from Redis pub/sub. */
  fanOut: StatusChangedPayload[];
  dispose(): Promise<void>;
}

/** A publisher and observers on the site's fresh vhost, database and Redis prefix. */
export async function createTestSite(
  name: string,
  infra: TestInfra,
  env: Record<string, string> = {},
  /**
   * `shardObservations: false` publishes as a producer older than sharding did: to the
   * un-sharded queue (any mix of targets in one batch), drained by one replica's legacy lane.
   */
  options: { shardObservations?: boolean } = {},
): Promise<TestSite> {
  const { vhost, database, redisPrefix, pg } = infra;
  const bus = createBus({
    shardObservations: options.shardObservations,
    url: vhost.amqpUrl,
    source: { site: 'test', service: 'status-ingest', location: 'ingest-a' },
    name: `test-${name}`,
    queues: [...observationShardQueueSpecs(), QueueName.AggregatorObservations],
  });
  const changes: StatusChangedPayload[] = [];
  const changeMessages: Record<string, number> = {};
  const capture = bus.consumer.consume(
    {
      name: `test.${name}.status-changed`,
      bindings: [
        { exchange: ExchangeName.Events, routingKey: RoutingKey.StatusChanged },
        { exchange: ExchangeName.Events, routingKey: RoutingKey.StatusChangedBatch },
      ],
    },
    async (envelope: Envelope) => {
      changeMessages[envelope.type] = (changeMessages[envelope.type] ?? 0) + 1;
      // The relay publishes a commit's events in one status.changed.batch; each one counts as its own change.
      if (envelope.type === Messages.StatusChangedBatch.type)
        for (const { eventId: _id, ...event } of (envelope.payload as StatusChangedBatchPayload).events)
          changes.push(event);
      else changes.push(envelope.payload as StatusChangedPayload);
    },
  );
  await capture.waitUntilActive(15_000);
  const redis = new Redis(infra.redisUrl, { keyPrefix: redisPrefix });
  const sub = new Redis(infra.redisUrl);
  const fanOut: StatusChangedPayload[] = [];
  sub.on(
    'message',
    (_channel: string, message: string) => void fanOut.push(JSON.parse(message) as StatusChangedPayload),
  );
  await sub.subscribe(`${redisPrefix}live:status`);
  return {
    vhost,
    database,
    redisPrefix,
    env: {
      AMQP_URL: vhost.amqpUrl,
      DATABASE_URL: database.databaseUrl,
      REDIS_URL: infra.redisUrl,
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
    changeMessages,
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

/**
 * createTestSite on a fresh vhost and database (a pg client connected to it) and the Redis
 * prefix `<run prefix><name>:`; the site's dispose() closes the client and drops all three.
 * `prepare` runs on the client before the site is made (what a test adds to its own database:
 * constraints, triggers); `shardObservations` as in createTestSite.
 */
export async function createIsolatedTestSite(
  name: string,
  env: Record<string, string> = {},
  options: { shardObservations?: boolean; prepare?: (pg: SqlClient) => Promise<void> } = {},
): Promise<TestSite> {
  const [vhost, database] = await Promise.all([createIsolatedVhost(name), createIsolatedDatabase()]);
  const pg = new Client({ connectionString: database.databaseUrl });
  await pg.connect();
  await options.prepare?.(pg);
  return createTestSite(
    name,
    { vhost, database, pg, redisUrl: testEnv().redisUrl, redisPrefix: `${testEnv().redisPrefix}${name}:` },
    env,
    options.shardObservations === undefined ? {} : { shardObservations: options.shardObservations },
  );
}

/**
 * The poison: Postgres refuses a status update whose message starts with 'poison' (a CHECK constraint, SQLSTATE
 * 23514, named test_poison), as it would any value it cannot hold.
 */
export async function refusePoisonMessages(pg: SqlClient): Promise<void> {
  await pg.query(
    `ALTER TABLE status_updates ADD CONSTRAINT test_poison CHECK (message IS NULL OR message NOT LIKE 'poison%')`,
  );
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
  // The built mark once more, last: an aggregator that noticed it gone mid-scan may have rebuilt (and marked live
  // state whole) before the scan reached the rest, which it then deleted — a flush of a real Redis is all at once.
  await redis.unlink(LiveKeys.built);
  return n;
}

@Global()
@Module({
  providers: [
    ReadinessRegistry,
    {
      provide: FLEETWATCH_LOGGER,
      useValue: createLogger('aggregator', process.env.TEST_LOG_LEVEL ?? 'silent', process.stderr),
    },
  ],
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
export function statusUpdate(
  instanceId: string,
  status: string,
  occurredAt: number,
  extra: Partial<StatusUpdateInput> = {},
): StatusUpdateInput {
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

/**
 * A `success` ping.received for heartbeat monitor `m` at `at`, as status-ingest publishes it: with the schedule it
 * read (no max runtime) and, when given, the config version it read it at.
 */
export function successPing(
  m: { monitorId: string; targetId: string },
  at: number,
  read: { periodSeconds: number; graceSeconds: number; configVersion?: number },
): PublishRequest {
  return publishRequest(
    Messages.PingReceived,
    {
      monitorId: m.monitorId,
      targetId: m.targetId,
      signal: 'success',
      receivedAt: new Date(at).toISOString(),
      periodSeconds: read.periodSeconds,
      graceSeconds: read.graceSeconds,
      maxRuntimeSeconds: null,
      ...(read.configVersion === undefined ? {} : { configVersion: read.configVersion }),
      name: 'job',
    },
    { id: uuidv7() },
  );
}

/** An instance's consensus events (location NULL), oldest first: the status each went to, and when (a STALE: the deadline that passed). */
export async function consensusTimeline(
  pg: SqlClient,
  instanceId: string,
): Promise<Array<{ status: string; at: number }>> {
  const { rows } = await pg.query<{ to_status: string; occurred_at: Date }>(
    'SELECT to_status, occurred_at FROM status_events WHERE target_id = $1 AND location IS NULL ORDER BY sequence',
    [TargetIds.instance(instanceId)],
  );
  return rows.map((r) => ({ status: r.to_status, at: r.occurred_at.getTime() }));
}

/**
 * Of `instanceIds`, those with a consensus STALE whose deadline passed before `before` (their STALE events): in the
 * catch-up specs, a deadline set before the queued updates were applied, expired ahead of them — the flap. A target
 * whose backlog was applied goes STALE again STALE_AFTER_SECONDS later if nothing follows (the deadline counts from
 * when an observation is applied, not when it was sent): not a flap, and seen when backlogs drain far apart.
 */
export async function staleBefore(
  pg: SqlClient,
  instanceIds: readonly string[],
  before: number,
): Promise<Array<{ id: string; events: Array<{ status: string; at: number }> }>> {
  const timelines = await Promise.all(instanceIds.map(async (id) => ({ id, events: await consensusTimeline(pg, id) })));
  return timelines
    .map(({ id, events }) => ({ id, events: events.filter((e) => e.status === TargetStatus.Stale && e.at < before) }))
    .filter((t) => t.events.length > 0);
}

export async function count(pg: SqlClient, sql: string, params: unknown[] = []): Promise<number> {
  const r = await pg.query<{ n: string | null }>(sql, params);
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * A private copy of the built services (`dist/`) under `tmp/<name>`, built first when
 * missing: another engineer's build (which empties dist/) cannot pull it away mid-test.
 * Returns the folder holding `dist/`; remove it when done. Asynchronous (copyBuiltDistAsync): callers have a site's
 * bus connected in this process by then, whose heartbeats a synchronous build or copy could hold past.
 */
export function privateDist(name: string): Promise<string> {
  return copyBuiltDistAsync(join(__dirname, '../../..', 'tmp', name));
}

/** Takes every message off the observations DLQ (a test's evidence: nothing replays them). */
/**
 * The observation queues — the un-sharded one, each shard's — and their dead-letter queues that hold a message: none
 * once an aggregator that took every message has stopped (acked, nothing back in a queue, nothing dead-lettered).
 */
export async function nonEmptyObservationQueues(amqpUrl: string): Promise<Array<[string, number]>> {
  const conn = await connect(amqpUrl);
  try {
    const ch = await conn.createChannel();
    const queues = [
      QueueName.AggregatorObservations,
      ...Array.from({ length: OBSERVATION_SHARDS }, (_, i) => observationShardQueue(i)),
    ];
    const out: Array<[string, number]> = [];
    for (const q of queues.flatMap((q) => [q, deadLetterQueueOf(q)])) {
      const n = (await ch.checkQueue(q)).messageCount;
      if (n > 0) out.push([q, n]);
    }
    return out;
  } finally {
    await conn.close();
  }
}

export async function drainObservationDeadLetters(amqpUrl: string): Promise<GetMessage[]> {
  // A connection of its own for each read: a missing queue closes the channel (404), and a basic.get that races
  // the aggregator re-declaring the quorum DLQ can close the whole connection (541 INTERNAL_ERROR, seen in CI) —
  // either fails this call only, never a connection the other cases share.
  const connection = await connect(amqpUrl);
  connection.on('error', () => undefined);
  const out: GetMessage[] = [];
  try {
    const ch = await connection.createChannel();
    ch.on('error', () => undefined);
    for (;;) {
      const m = await ch.get(deadLetterQueueOf(QueueName.AggregatorObservations), { noAck: true });
      if (m === false) break;
      out.push(m);
    }
  } finally {
    await connection.close().catch(() => undefined);
  }
  return out;
}

/**
 * Publishes one status.update.batch of `updates` as raw bytes, as an older producer that skipped the edge's rules did,
 * to the un-sharded observations queue (bound first, as the site's publisher would on its first publish).
 */
export async function publishRawStatusBatch(amqp: ChannelModel, updates: readonly unknown[]): Promise<void> {
  const envelope = {
    id: uuidv7(),
    type: Messages.StatusUpdateBatch.type,
    schemaVersion: Messages.StatusUpdateBatch.schemaVersion,
    occurredAt: new Date().toISOString(),
    source: { site: 'old', service: 'status-ingest' },
    correlationId: uuidv7(),
    payload: { updates },
  };
  const ch = await amqp.createConfirmChannel();
  await ch.bindQueue(QueueName.AggregatorObservations, ExchangeName.Events, RoutingKey.StatusUpdateBatch);
  ch.publish(ExchangeName.Events, RoutingKey.StatusUpdateBatch, Buffer.from(JSON.stringify(envelope)), {
    persistent: true,
    messageId: envelope.id,
    type: envelope.type,
    contentType: 'application/json',
  });
  await ch.waitForConfirms();
  await ch.close();
}
