import { env, parseServiceEnv } from '@fleetwatch/config';

/** aggregator's whole configuration, validated once at boot. */
export function loadAggregatorConfig(source: Record<string, string | undefined> = process.env) {
  const { common, values } = parseServiceEnv(
    'aggregator',
    {
      DATABASE_URL: env.databaseUrl(),
      REDIS_URL: env.redisUrl(),
      AMQP_URL: env.amqpUrl(),
      AGGREGATOR_PREFETCH: env.int(500, 1, 10_000),
      AGGREGATOR_BATCH_SIZE: env.int(500, 1, 10_000),
      AGGREGATOR_BATCH_WAIT_MS: env.int(50, 1, 10_000),
      CONSENSUS_DOWN_QUORUM_PCT: env.number(100, 1, 100),
      STALE_AFTER_SECONDS: env.int(300, 5, 86_400 * 7),
      SWEEP_INTERVAL_MS: env.int(1000, 100, 60_000),
      HISTORY_RAW_RETENTION_DAYS: env.int(7, 1, 3650),
      HISTORY_ROLLUP_RETENTION_DAYS: env.int(90, 1, 3650),
    },
    source,
  );
  return {
    ...common,
    databaseUrl: values.DATABASE_URL,
    redisUrl: values.REDIS_URL,
    amqpUrl: values.AMQP_URL,
    prefetch: values.AGGREGATOR_PREFETCH,
    batch: { maxSize: values.AGGREGATOR_BATCH_SIZE, maxWaitMs: values.AGGREGATOR_BATCH_WAIT_MS },
    downQuorumPct: values.CONSENSUS_DOWN_QUORUM_PCT,
    staleAfterSeconds: values.STALE_AFTER_SECONDS,
    sweepIntervalMs: values.SWEEP_INTERVAL_MS,
    retention: { rawDays: values.HISTORY_RAW_RETENTION_DAYS, rollupDays: values.HISTORY_ROLLUP_RETENTION_DAYS },
  };
}
export type AggregatorConfig = ReturnType<typeof loadAggregatorConfig>;
