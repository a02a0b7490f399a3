import { z } from 'zod';
import { amqpShortString, commonFields, envNameSchema, hostSchema, portSchema, urlOf } from './check-fields';

// Service collectors (SPEC §5, issue 16): check types that read a service's own figures
// and report them in the result's `metrics` (checkMetricSchema: names like
// `redis_connected_clients`, a few labels, a number). They are configured like every other
// check (POST /api/v1/checks, YAML import), assigned to collectors by location, subject to
// the target policy, and their conditions read the figures with `metric("name", {labels})`.
// Secrets are never in a definition: passwords and keys name FLEETWATCH_SECRET_* variables.

export const SERVICE_CHECK_TYPES = ['redis-stats', 'rabbitmq-queues', 'rabbitmq-tap', 'postgres-stats', 's3'] as const;
export type ServiceCheckType = (typeof SERVICE_CHECK_TYPES)[number];

/** A JSON path like `$.meta.sentAt` or `$.items[0]["sent at"]` (the http check's syntax). */
export const jsonPathSchema = z
  .string()
  .max(512)
  .regex(/^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]|\["[^"]*"\])*$/, 'a JSON path like $.a.b[0] or $["a b"]');

/** An AMQP short string that names a queue or exchange (no NUL or line breaks, at most 255 bytes). */
const amqpName = amqpShortString(1);

/** A Redis key read by the redis-stats check; the type is asked of the server unless given. */
export const redisKeyReadSchema = z.strictObject({
  key: z
    .string()
    .min(1)
    .max(512)
    .regex(/^[^\0]+$/, 'no NUL'),
  /** What to read; `auto` asks Redis (TYPE). A hash is counted by value, a set/list/zset by length, a string as a number. */
  type: z.enum(['auto', 'hash', 'set', 'list', 'zset', 'string']).default('auto'),
  /** Hash fields read at most (HSCAN pages); beyond, the counts say `truncated`. Bounds the collector's memory per run. */
  maxFields: z.number().int().min(1).max(100_000).default(10_000),
  /** Distinct hash values counted one by one at most; the rest are summed as `redis_key_hash_other`. */
  maxValues: z.number().int().min(1).max(100).default(20),
});

const redisConnection = {
  host: hostSchema,
  port: portSchema.default(6379),
  username: z.string().min(1).max(128).optional(),
  passwordEnv: envNameSchema.optional(),
  db: z.number().int().min(0).max(1024).default(0),
  tls: z.boolean().default(false),
};

/** Redis INFO figures (memory, clients, ops/s, keyspace, evictions…) and named keys read by type. */
export const redisStatsCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('redis-stats'),
  ...redisConnection,
  keys: z.array(redisKeyReadSchema).max(32).default([]),
});

const amqpConnection = {
  host: hostSchema,
  port: portSchema.default(5672),
  vhost: amqpShortString(1).default('/'),
  username: z.string().min(1).max(128).default('guest'),
  passwordEnv: envNameSchema.optional(),
  tls: z.boolean().default(false),
};

/**
 * Per-queue depth, consumers and rates from the management API (`managementUrl`, same user and
 * password); without it, or when it does not answer, passive declares of the named queues over AMQP
 * (depth and consumers, no rates).
 */
export const rabbitmqQueuesCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('rabbitmq-queues'),
  ...amqpConnection,
  /** The queues to report; empty: every queue of the vhost the management API lists (at most `maxQueues`). */
  queues: z.array(amqpName).max(100).default([]),
  managementUrl: urlOf(['http', 'https']).optional(),
  maxQueues: z.number().int().min(1).max(200).default(100),
});

/**
 * A pipeline tap: the collector binds a private queue (exclusive, auto-delete, server-named) to
 * `exchange` with `routingKey`, consumes it with manual acks while the check is assigned, and each
 * run reports the window since the last: messages per second and end-to-end latency from the
 * payload's timestamp at `timestampPath`. It never consumes from the application's own queues.
 */
export const rabbitmqTapCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('rabbitmq-tap'),
  ...amqpConnection,
  exchange: amqpName,
  /** Binding key (topic patterns for a topic exchange; ignored by fanout). */
  routingKey: amqpShortString(0).default('#'),
  /** Where the payload (JSON) carries when it was sent: an ISO 8601 string, or epoch milliseconds or seconds. */
  timestampPath: jsonPathSchema.optional(),
  /** How a numeric timestamp is read: `auto` takes values below 1e11 as seconds. */
  timestampUnit: z.enum(['auto', 'iso', 'ms', 's']).default('auto'),
  /** Deliveries unacked at once. */
  prefetch: z.number().int().min(1).max(1000).default(100),
  /** The private queue's length limit (x-max-length, oldest dropped): a stalled collector holds no more. */
  maxQueueLength: z.number().int().min(1).max(1_000_000).default(10_000),
});

/** Connections by state, replication lag (primary: per replica; standby: replay delay), database sizes. */
export const postgresStatsCheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('postgres-stats'),
  host: hostSchema,
  port: portSchema.default(5432),
  database: z.string().min(1).max(128).default('postgres'),
  user: z.string().min(1).max(128).default('postgres'),
  passwordEnv: envNameSchema.optional(),
  ssl: z.boolean().default(false),
  /** Databases sized at most (largest first). */
  maxDatabases: z.number().int().min(1).max(200).default(50),
});

/** S3-compatible storage health: HeadBucket, then a small put/get/delete under `prefix`. */
export const s3CheckFields = z.strictObject({
  ...commonFields,
  type: z.literal('s3'),
  /** The service's URL: `https://s3.eu-west-1.amazonaws.com`, `http://minio:9000`. */
  endpoint: urlOf(['http', 'https']),
  region: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[a-z0-9-]+$/, 'a region like us-east-1')
    .default('us-east-1'),
  bucket: z
    .string()
    .min(3)
    .max(63)
    .regex(/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/, 'a bucket name: lower-case letters, digits, . and -'),
  accessKeyIdEnv: envNameSchema,
  secretAccessKeyEnv: envNameSchema,
  /** Path-style URLs (`endpoint/bucket/key`), as MinIO and most S3-compatible servers want. */
  forcePathStyle: z.boolean().default(true),
  /** Put, read back and delete one small object under this prefix; false: HeadBucket only. */
  roundTrip: z.boolean().default(true),
  prefix: z
    .string()
    .max(256)
    .regex(/^[A-Za-z0-9!_.*'()/-]*$/, "letters, digits and ! _ . * ' ( ) / -")
    .default('fleetwatch-probe/'),
  tlsVerify: z.boolean().default(true),
});
