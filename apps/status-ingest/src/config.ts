import { databaseSettings, databaseShape, env, parseServiceEnv } from '@fleetwatch/config';
import { z } from 'zod';
import { CLIENT_AUTH_MODES, loadIngestTls } from './http/tls';

/** status-ingest's whole configuration, validated once at boot. */
export function loadIngestConfig(source: Record<string, string | undefined> = process.env) {
  const { common, values } = parseServiceEnv(
    'status-ingest',
    {
      /** DATABASE_URL and its connections' limits (timeouts, keep-alive). */
      ...databaseShape,
      AMQP_URL: env.amqpUrl(),
      /** Shared by replicas: rate-limit buckets and the ingress pause. */
      REDIS_URL: env.redisUrl(),
      /** A Redis call without an answer within this counts as Redis away (rate limits fall back to local buckets). */
      INGEST_REDIS_TIMEOUT_MS: env.int(250, 10, 10_000),
      INGEST_BODY_LIMIT_BYTES: env.int(1024 * 1024, 1024, 64 * 1024 * 1024),
      /**
       * A body not received whole this long after its request began is answered 408 and its connection closed: a
       * stalled upload holds its admission (INGEST_MAX_BODIES_IN_PROGRESS_BYTES) only this long, not Node's 5 minutes.
       */
      INGEST_BODY_TIMEOUT_MS: env.int(30_000, 100, 600_000),
      /** An answer sent before the body was read (413, 401) waits while up to this much of it is read and dropped, so the client gets it. */
      INGEST_BODY_DISCARD_LIMIT_BYTES: env.int(32 * 1024 * 1024, 0, 1024 * 1024 * 1024),
      /** TLS on the ingest port (PEM files); client certificates checked against INGEST_TLS_CLIENT_CA. */
      INGEST_TLS_CERT: env.optionalString(),
      INGEST_TLS_KEY: env.optionalString(),
      INGEST_TLS_CLIENT_CA: env.optionalString(),
      INGEST_TLS_CLIENT_AUTH: z
        .enum(CLIENT_AUTH_MODES, { message: 'must be off, optional or required' })
        .default('off'),
      INGEST_RATE_LIMIT_PER_SECOND: env.int(5000, 1, 1_000_000),
      INGEST_RATE_LIMIT_BURST: env.int(10000, 1, 10_000_000),
      INGEST_PUBLISH_TIMEOUT_MS: env.int(5000, 100, 60_000),
      HISTORY_RAW_RETENTION_DAYS: env.int(7, 1, 3650),
      INGEST_MAX_FUTURE_SKEW_SECONDS: env.int(300, 0, 86_400),
      /** Proxies (CIDRs) whose X-Forwarded-For is believed; empty or false: none. */
      INGEST_TRUST_PROXY: env.trustedProxies(),
      /** How long a verified (or refused) API key is remembered; keeps revocation effective within ~this + one lookup. */
      INGEST_AUTH_CACHE_MS: env.int(2000, 0, 4000),
      /** How often API-key uses are reported to the gateway (one `apikey.used` per key used since, its newest use). */
      INGEST_API_KEY_USE_FLUSH_MS: env.int(60_000, 100, 3_600_000),
      /**
       * Refused API keys (401) per client address per minute, per replica, in memory; beyond: 429 + Retry-After before
       * the key is looked up (forged keys cost a query each).
       */
      INGEST_AUTH_FAILURES_PER_IP_PER_MINUTE: env.int(60, 1, 10_000_000),
      /**
       * A request whose API key or ping token is not cached waits this long for its database lookup, then gets 503 +
       * Retry-After (Postgres hanging would otherwise hold it for DATABASE_QUERY_TIMEOUT_MS); the lookup runs on.
       */
      INGEST_KEY_LOOKUP_TIMEOUT_MS: env.int(2000, 100, 60_000),
      /** API-key and ping-token lookups under way at once (distinct keys; one per key); beyond: 503 + Retry-After. */
      INGEST_KEY_LOOKUP_MAX_CONCURRENT: env.int(64, 1, 10_000),
      /** How long a ping token's monitor (or its absence) is remembered. */
      INGEST_PING_CACHE_MS: env.int(5000, 0, 60_000),
      /** Pings per monitor per minute (a bucket of this size, refilled over a minute). */
      INGEST_PING_RATE_LIMIT_PER_TOKEN_PER_MINUTE: env.int(60, 1, 1_000_000),
      /** Pings per client address per minute, whatever the token (unknown tokens count too). */
      INGEST_PING_RATE_LIMIT_PER_IP_PER_MINUTE: env.int(1200, 1, 10_000_000),
      /** Retry-After (seconds) when the broker is away or ingress is paused without an end time. */
      INGEST_RETRY_AFTER_SECONDS: env.int(5, 1, 3600),
      /**
       * Publishes per observation shard awaiting their confirm before concurrent requests for that shard are grouped
       * into one message. 1: the aggregator holds a fixed number of messages per shard (its byte budget ÷ the largest
       * message), so the updates each message carries set its intake; one in flight makes the groups larger.
       */
      INGEST_COALESCE_MAX_IN_FLIGHT: env.int(1, 1, 1000),
      /** Updates (and their approximate bytes) waiting for a publish slot, at most; beyond: 503 + Retry-After. */
      INGEST_COALESCE_MAX_QUEUED_UPDATES: env.int(20_000, 1000, 1_000_000),
      INGEST_COALESCE_MAX_QUEUED_BYTES: env.int(32 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024),
      /** Longest wait for a publish slot before a request gets 503 + Retry-After. */
      INGEST_COALESCE_MAX_WAIT_MS: env.int(2000, 10, 60_000),
      /** Bytes of request bodies being parsed and published at once (a parsed batch costs several times its size); beyond: 503 + Retry-After before the body is read. */
      INGEST_MAX_BODIES_IN_PROGRESS_BYTES: env.int(16 * 1024 * 1024, 1024 * 1024, 1024 * 1024 * 1024),
    },
    source,
  );
  return {
    ...common,
    databaseUrl: values.DATABASE_URL,
    database: databaseSettings(values),
    amqpUrl: values.AMQP_URL,
    redisUrl: values.REDIS_URL,
    redisTimeoutMs: values.INGEST_REDIS_TIMEOUT_MS,
    bodyLimitBytes: values.INGEST_BODY_LIMIT_BYTES,
    bodyDiscardLimitBytes: values.INGEST_BODY_DISCARD_LIMIT_BYTES,
    bodyTimeoutMs: values.INGEST_BODY_TIMEOUT_MS,
    tls: loadIngestTls(values),
    rateLimit: { perSecond: values.INGEST_RATE_LIMIT_PER_SECOND, burst: values.INGEST_RATE_LIMIT_BURST },
    publishTimeoutMs: values.INGEST_PUBLISH_TIMEOUT_MS,
    rawRetentionDays: values.HISTORY_RAW_RETENTION_DAYS,
    maxFutureSkewSeconds: values.INGEST_MAX_FUTURE_SKEW_SECONDS,
    trustedProxies: values.INGEST_TRUST_PROXY,
    authCacheMs: values.INGEST_AUTH_CACHE_MS,
    authFailuresPerIpPerMinute: values.INGEST_AUTH_FAILURES_PER_IP_PER_MINUTE,
    apiKeyUseFlushMs: values.INGEST_API_KEY_USE_FLUSH_MS,
    keyLookupTimeoutMs: values.INGEST_KEY_LOOKUP_TIMEOUT_MS,
    keyLookupMaxConcurrent: values.INGEST_KEY_LOOKUP_MAX_CONCURRENT,
    pingCacheMs: values.INGEST_PING_CACHE_MS,
    pingRateLimit: {
      perTokenPerMinute: values.INGEST_PING_RATE_LIMIT_PER_TOKEN_PER_MINUTE,
      perIpPerMinute: values.INGEST_PING_RATE_LIMIT_PER_IP_PER_MINUTE,
    },
    retryAfterSeconds: values.INGEST_RETRY_AFTER_SECONDS,
    coalesceMaxInFlight: values.INGEST_COALESCE_MAX_IN_FLIGHT,
    coalesceMaxQueuedUpdates: values.INGEST_COALESCE_MAX_QUEUED_UPDATES,
    coalesceMaxQueuedBytes: values.INGEST_COALESCE_MAX_QUEUED_BYTES,
    coalesceMaxWaitMs: values.INGEST_COALESCE_MAX_WAIT_MS,
    maxBodiesInProgressBytes: values.INGEST_MAX_BODIES_IN_PROGRESS_BYTES,
  };
}
export type IngestConfig = ReturnType<typeof loadIngestConfig>;
