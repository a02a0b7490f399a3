import {
  ConfigError,
  databaseLockShape,
  databaseLockUrl,
  databaseSettings,
  databaseShape,
  env,
  parseServiceEnv,
} from '@fleetwatch/config';
import { parseSealingKey } from '@fleetwatch/persistence';
import { DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import { DEFAULT_RETRY_POLICY } from '@fleetwatch/alerting';
import { z } from 'zod';

function keyProblem(value: string | undefined, ctx: z.RefinementCtx): void {
  if (!value || !value.trim()) return;
  try {
    parseSealingKey(value);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
}

/** aggregator's whole configuration, validated once at boot. */
export function loadAggregatorConfig(source: Record<string, string | undefined> = process.env) {
  const { common, values } = parseServiceEnv(
    'aggregator',
    {
      /** DATABASE_URL and its connections' limits (timeouts, keep-alive). */
      ...databaseShape,
      /** Where its advisory-lock sessions connect (default DATABASE_URL): never through a transaction-mode pooler. */
      ...databaseLockShape,
      REDIS_URL: env.redisUrl(),
      /**
       * A Redis command without an answer within this fails (as an outage: projections retry it, the sweeper's
       * Redis jobs skip their turn). Without it, a command in flight when the connection dropped waited for Redis to
       * come back: ioredis resends it after reconnecting. Keep it well above one commit's projection (a script over
       * up to AGGREGATOR_MAX_OBSERVATIONS_PER_COMMIT targets: about 0.1–0.3 s at 2,000, 1–1.3 s at 20,000 on an idle
       * 2-core box): a projection that always outlasts it is retried for ever.
       */
      AGGREGATOR_REDIS_TIMEOUT_MS: env.int(5000, 1000, 60_000),
      AMQP_URL: env.amqpUrl(),
      /**
       * Most unacked deliveries RabbitMQ may push to the consumer (the bus caps it at 1000). The prefetch in force
       * adapts below it so that a window of the largest recent messages fits the in-flight budget below.
       */
      AGGREGATOR_PREFETCH: env.int(1000, 1, 1000),
      /** In-flight budget: updates held (received, not yet committed and acked). Intake pauses above it, resumes at half. */
      AGGREGATOR_MAX_IN_FLIGHT_UPDATES: env.int(16_000, 1000, 1_000_000),
      /** In-flight budget: bytes of message bodies held. */
      AGGREGATOR_MAX_IN_FLIGHT_BYTES: env.int(16 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024),
      /** Observations committed per transaction; at most the prefetch. */
      AGGREGATOR_BATCH_SIZE: env.int(500, 1, 1000),
      /**
       * Least time between two batches handed to a shard's lane (leading edge): an observation arriving after a
       * quiet spell is committed at once, so an idle aggregator adds no latency; under load a lane commits at most
       * once per this wait and its batches grow with the load. 0: commit whenever the lane is idle.
       */
      AGGREGATOR_BATCH_WAIT_MS: env.int(25, 0, 10_000),
      /** Observations per transaction (a status.update.batch message carries up to 1000): larger batches commit in chunks. */
      AGGREGATOR_MAX_OBSERVATIONS_PER_COMMIT: env.int(2000, 100, 20_000),
      /** Connections of the write path: the shards' lanes commit concurrently (plus the sweeper's jobs). */
      AGGREGATOR_DB_POOL_SIZE: env.int(10, 2, 100),
      /**
       * The commit path's statements as named prepared statements (parsed and planned once per connection). Set
       * false behind a connection pooler in transaction mode that does not carry prepared statements (PgBouncer
       * before 1.21, or without max_prepared_statements).
       */
      AGGREGATOR_DB_PREPARED_STATEMENTS: env.bool(true),
      /**
       * This replica's name among the aggregator replicas sharing the observation shards (default: host, pid and
       * a random suffix). Only needs setting to make logs and the registry readable.
       */
      AGGREGATOR_REPLICA_ID: env.optionalString(),
      /**
       * How often each replica beats in the replica registry and re-balances the shards. A dead replica's shards
       * are taken over about two intervals after its death; a replica that leaves hands its shards over at once.
       */
      AGGREGATOR_SHARD_CHECK_INTERVAL_MS: env.int(1000, 100, 60_000),
      /** % of reporting locations DOWN that makes the consensus DOWN instead of PARTIAL (100 = all). */
      CONSENSUS_DOWN_QUORUM_PCT: env.number(100, 1, 100),
      /** A pushed instance or host with nothing heard for this long turns STALE. */
      STALE_AFTER_SECONDS: env.int(300, 5, 86_400 * 7),
      SWEEP_INTERVAL_MS: env.int(1000, 100, 60_000),
      /**
       * Longest a shard's deadlines wait for its consumer to catch up with its queue, so that observations that
       * arrived in time are applied before their targets' deadlines expire: after the shard is taken (at start or on a
       * hand-over), at most this long after the take (its queue seen with nothing ready, then everything delivered by
       * the next sweep settled); after that, while the consumer is behind (Redis or Postgres away, a backlog), a
       * deadline waits until everything published to the shard before it has been applied, at most this long past
       * the deadline. 0: no wait.
       */
      SWEEP_CATCH_UP_MAX_MS: env.int(60_000, 0, 3_600_000),
      /** How often dirty 1-minute rollup buckets are recomputed from raw rows. */
      AGGREGATOR_ROLLUP_INTERVAL_MS: env.int(10_000, 100, 3_600_000),
      /** How often retention trims history (raw and rollups). */
      AGGREGATOR_RETENTION_INTERVAL_MS: env.int(3_600_000, 1000, 86_400_000),
      HISTORY_RAW_RETENTION_DAYS: env.int(7, 1, 3650),
      HISTORY_ROLLUP_RETENTION_DAYS: env.int(90, 1, 3650),
      /**
       * Opens notification channels' secrets (sealed by sync-orchestrator under the same key, SPEC §7): the
       * same value as sync-orchestrator's. Without it, channels that have secrets are not sent to (retried, logged).
       */
      FLEETWATCH_ENCRYPTION_KEY: z.string().max(200).optional().superRefine(keyProblem),
      /** Earlier keys, comma-separated: they open what they sealed (rotation). */
      FLEETWATCH_ENCRYPTION_KEY_PREVIOUS: z
        .string()
        .max(4000)
        .optional()
        .superRefine((v, ctx) => v?.split(',').forEach((k) => keyProblem(k, ctx))),
      /** Networks notifications may never reach (the checks' target policy, SPEC §5); replaces the default list. */
      FLEETWATCH_CHECK_DENY_NETWORKS: env.cidrList(DEFAULT_DENY_NETWORKS.join(',')),
      /** The dashboard's address as people reach it: links in notifications. */
      FLEETWATCH_EXTERNAL_URL: z
        .string()
        .max(2048)
        .optional()
        .refine((v) => !v?.trim() || (/^https?:\/\//i.test(v.trim()) && URL.canParse(v.trim())), 'an http(s) URL'),
      /** One notification send (HTTP exchange or SMTP session), at most. */
      ALERT_DELIVERY_TIMEOUT_MS: env.int(10_000, 500, 120_000),
      /**
       * Attempts of one notification before it is given up (transient failures only; logged each). The default leaves
       * it to the age limit (6 h of retries, every 10 min after the first ~17 min).
       */
      ALERT_DELIVERY_MAX_ATTEMPTS: env.int(DEFAULT_RETRY_POLICY.maxAttempts, 1, 100),
      /**
       * Attempts of one status-change subscription delivery (each change is its own delivery: a dead receiver with a
       * burst of changes would hold thousands of them for 6 h at the alerts' count).
       */
      SUBSCRIPTION_DELIVERY_MAX_ATTEMPTS: env.int(10, 1, 100),
    },
    source,
  );
  if (values.AGGREGATOR_BATCH_SIZE > values.AGGREGATOR_PREFETCH) {
    throw new ConfigError([
      {
        variable: 'AGGREGATOR_BATCH_SIZE',
        message: `must not exceed AGGREGATOR_PREFETCH (${values.AGGREGATOR_PREFETCH})`,
      },
    ]);
  }
  // Rollups kept for less than raw rows would drop the 1-minute history (what charts past an hour read) while the
  // raw rows of those minutes are still kept, and a late row of a minute whose rollup is gone would recompute it
  // from the rows left: the rollup window is the longer one (SPEC §4: raw 7 days, rollups 90).
  if (values.HISTORY_ROLLUP_RETENTION_DAYS < values.HISTORY_RAW_RETENTION_DAYS) {
    throw new ConfigError([
      {
        variable: 'HISTORY_ROLLUP_RETENTION_DAYS',
        message: `must not be less than HISTORY_RAW_RETENTION_DAYS (${values.HISTORY_RAW_RETENTION_DAYS})`,
      },
    ]);
  }
  return {
    ...common,
    databaseUrl: values.DATABASE_URL,
    /** Advisory-lock sessions (leases, shard locks): DATABASE_LOCK_URL, else DATABASE_URL. */
    lockDatabaseUrl: databaseLockUrl(values),
    database: databaseSettings(values),
    redisUrl: values.REDIS_URL,
    redisTimeoutMs: values.AGGREGATOR_REDIS_TIMEOUT_MS,
    amqpUrl: values.AMQP_URL,
    prefetch: values.AGGREGATOR_PREFETCH,
    budget: { maxUnits: values.AGGREGATOR_MAX_IN_FLIGHT_UPDATES, maxBytes: values.AGGREGATOR_MAX_IN_FLIGHT_BYTES },
    batch: {
      maxSize: values.AGGREGATOR_BATCH_SIZE,
      maxWaitMs: values.AGGREGATOR_BATCH_WAIT_MS,
      leading: true,
      // One batch is about one transaction, and at most half the budget so the next one fills while it commits.
      maxUnits: Math.min(
        values.AGGREGATOR_MAX_OBSERVATIONS_PER_COMMIT,
        Math.floor(values.AGGREGATOR_MAX_IN_FLIGHT_UPDATES / 2),
      ),
    },
    maxObservationsPerCommit: values.AGGREGATOR_MAX_OBSERVATIONS_PER_COMMIT,
    dbPoolSize: values.AGGREGATOR_DB_POOL_SIZE,
    dbPreparedStatements: values.AGGREGATOR_DB_PREPARED_STATEMENTS,
    replicaId: values.AGGREGATOR_REPLICA_ID?.trim() || undefined,
    shards: {
      checkIntervalMs: values.AGGREGATOR_SHARD_CHECK_INTERVAL_MS,
      // A free shard is left to its owner for two rounds before anyone takes it.
      orphanGraceMs: 2 * values.AGGREGATOR_SHARD_CHECK_INTERVAL_MS,
      // A replica silent for five rounds is dead; a shard is held at least that long before it is handed over.
      replicaTtlMs: 5 * values.AGGREGATOR_SHARD_CHECK_INTERVAL_MS,
      minHoldMs: 5 * values.AGGREGATOR_SHARD_CHECK_INTERVAL_MS,
    },
    downQuorumPct: values.CONSENSUS_DOWN_QUORUM_PCT,
    staleAfterSeconds: values.STALE_AFTER_SECONDS,
    sweepIntervalMs: values.SWEEP_INTERVAL_MS,
    sweepCatchUpMaxMs: values.SWEEP_CATCH_UP_MAX_MS,
    rollupIntervalMs: values.AGGREGATOR_ROLLUP_INTERVAL_MS,
    retentionIntervalMs: values.AGGREGATOR_RETENTION_INTERVAL_MS,
    retention: { rawDays: values.HISTORY_RAW_RETENTION_DAYS, rollupDays: values.HISTORY_ROLLUP_RETENTION_DAYS },
    alertDelivery: {
      encryptionKey: values.FLEETWATCH_ENCRYPTION_KEY?.trim() || undefined,
      previousEncryptionKeys: (values.FLEETWATCH_ENCRYPTION_KEY_PREVIOUS ?? '')
        .split(',')
        .map((k) => k.trim())
        .filter(Boolean),
      externalURL: (values.FLEETWATCH_EXTERNAL_URL?.trim() || 'http://localhost:3000').replace(/\/+$/, ''),
      timeoutMs: values.ALERT_DELIVERY_TIMEOUT_MS,
      maxAttempts: values.ALERT_DELIVERY_MAX_ATTEMPTS,
      subscriptionMaxAttempts: values.SUBSCRIPTION_DELIVERY_MAX_ATTEMPTS,
      denyNetworks: values.FLEETWATCH_CHECK_DENY_NETWORKS,
    },
  };
}
export type AggregatorConfig = ReturnType<typeof loadAggregatorConfig>;
