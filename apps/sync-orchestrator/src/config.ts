import {
  ConfigError,
  databaseLockShape,
  databaseLockUrl,
  databaseSettings,
  databaseShape,
  env,
  parseServiceEnv,
} from '@fleetwatch/config';
import { DEFAULT_DENY_NETWORKS } from '@fleetwatch/domain';
import { parseSealingKey } from '@fleetwatch/persistence';
import { z } from 'zod';
import { DEFAULT_MAX_INFLIGHT_BYTES, defaultMemberTimeoutMs } from './fleet/poll-defaults';

/** sync-orchestrator's whole configuration, validated once at boot. */
export function loadSyncConfig(source: Record<string, string | undefined> = process.env) {
  const { common, values } = parseServiceEnv(
    'sync-orchestrator',
    {
      /** DATABASE_URL and its connections' limits (timeouts, keep-alive). */
      ...databaseShape,
      /** Where its advisory-lock sessions connect (default DATABASE_URL): never through a transaction-mode pooler. */
      ...databaseLockShape,
      REDIS_URL: env.redisUrl(),
      /**
       * A Redis command without an answer within this fails (the fleet cycle's member reports, readiness) instead of
       * waiting for Redis to come back: a connection gone silent held the fleet poll for as long as it was.
       */
      SYNC_REDIS_TIMEOUT_MS: env.int(5_000, 1_000, 60_000),
      AMQP_URL: env.amqpUrl(),
      /** JSON (or a path to a JSON file) listing member sites (SPEC §8); read by the fleet module. */
      FLEETWATCH_LEADER_CONFIG: z
        .string()
        .max(1024 * 1024)
        .optional(),
      /** Networks checks may never reach (SPEC §5, §11); checked at save time where the address is literal. Same default as the collector's. */
      FLEETWATCH_CHECK_DENY_NETWORKS: env.cidrList(DEFAULT_DENY_NETWORKS.join(',')),
      /** How often the config.changed relay looks for events left in the outbox (after the bus was away). */
      CONFIG_RELAY_INTERVAL_SECONDS: env.int(5, 1, 3600),
      /**
       * Seals notification channels' secrets at rest (AES-256-GCM): 32 bytes as 64 hex digits or base64.
       * Without it channels work, but a write carrying a secret is refused (422). `npm start` generates
       * one into .fleetwatch/ for development. Not FLEETWATCH_SECRET_*: checks may read that prefix.
       */
      FLEETWATCH_ENCRYPTION_KEY: z.string().max(200).optional().superRefine(keyProblem),
      /** Earlier keys, comma-separated: they still open what they sealed (rotation), never seal. */
      FLEETWATCH_ENCRYPTION_KEY_PREVIOUS: z
        .string()
        .max(4000)
        .optional()
        .superRefine((v, ctx) => v?.split(',').forEach((k) => keyProblem(k, ctx))),
      /** Seed the shipped alert rules on the first start (once; a deleted one stays deleted). */
      FLEETWATCH_DEFAULT_ALERT_RULES: env.bool(true),
      FLEET_POLL_INTERVAL_SECONDS: env.int(30, 5, 3600),
      FLEET_POLL_TIMEOUT_SECONDS: env.int(25, 1, 3600),
      /** Members polled at the same time (SPEC §8: bounded concurrency). */
      FLEET_POLL_CONCURRENCY: env.int(50, 1, 1000),
      /**
       * One member's limit within a cycle (its three endpoints together). Unset: half FLEET_POLL_TIMEOUT_SECONDS, at
       * most 5 s. Raise it for a big snapshot over a slow link; at most the overall timeout.
       */
      FLEET_POLL_MEMBER_TIMEOUT_MS: z.coerce
        .number({ message: 'must be a number' })
        .int('must be a whole number')
        .min(100, 'must be ≥ 100')
        .max(3_600_000, 'must be ≤ 3600000')
        .optional(),
      /**
       * Bytes of members' answers a poll cycle holds at once (read, not yet parsed), counted as they arrive: an answer
       * whose chunk does not fit fails. Each answer is capped at 8 MiB on its own; 50 members × 3 endpoints could
       * otherwise hold 1.2 GB. Default 64 MiB.
       */
      FLEET_POLL_MAX_INFLIGHT_BYTES: env.int(DEFAULT_MAX_INFLIGHT_BYTES, 1024 * 1024, 4 * 1024 * 1024 * 1024),
    },
    source,
  );
  if (values.FLEET_POLL_TIMEOUT_SECONDS >= values.FLEET_POLL_INTERVAL_SECONDS) {
    throw new ConfigError([
      { variable: 'FLEET_POLL_TIMEOUT_SECONDS', message: 'must be below FLEET_POLL_INTERVAL_SECONDS' },
    ]);
  }
  if (
    values.FLEET_POLL_MEMBER_TIMEOUT_MS !== undefined &&
    values.FLEET_POLL_MEMBER_TIMEOUT_MS > values.FLEET_POLL_TIMEOUT_SECONDS * 1000
  ) {
    throw new ConfigError([
      {
        variable: 'FLEET_POLL_MEMBER_TIMEOUT_MS',
        message: 'must be at most FLEET_POLL_TIMEOUT_SECONDS (in milliseconds): the cycle cuts every member there',
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
    redisTimeoutMs: values.SYNC_REDIS_TIMEOUT_MS,
    amqpUrl: values.AMQP_URL,
    leaderConfig: values.FLEETWATCH_LEADER_CONFIG,
    denyNetworks: values.FLEETWATCH_CHECK_DENY_NETWORKS,
    configRelayIntervalMs: values.CONFIG_RELAY_INTERVAL_SECONDS * 1000,
    encryptionKey: values.FLEETWATCH_ENCRYPTION_KEY || undefined,
    previousEncryptionKeys: (values.FLEETWATCH_ENCRYPTION_KEY_PREVIOUS ?? '')
      .split(',')
      .map((k) => k.trim())
      .filter(Boolean),
    seedDefaultAlertRules: values.FLEETWATCH_DEFAULT_ALERT_RULES,
    pollIntervalMs: values.FLEET_POLL_INTERVAL_SECONDS * 1000,
    pollTimeoutMs: values.FLEET_POLL_TIMEOUT_SECONDS * 1000,
    pollConcurrency: values.FLEET_POLL_CONCURRENCY,
    /** One member's limit in a cycle: FLEET_POLL_MEMBER_TIMEOUT_MS, else half the overall timeout, at most 5 s. */
    pollMemberTimeoutMs:
      values.FLEET_POLL_MEMBER_TIMEOUT_MS ?? defaultMemberTimeoutMs(values.FLEET_POLL_TIMEOUT_SECONDS * 1000),
    pollMaxInflightBytes: values.FLEET_POLL_MAX_INFLIGHT_BYTES,
  };
}
export type SyncConfig = ReturnType<typeof loadSyncConfig>;

/** A key's problem, never the key itself (boot errors are printed). */
function keyProblem(value: string | undefined, ctx: z.RefinementCtx): void {
  if (!value || !value.trim()) return;
  try {
    parseSealingKey(value);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
}
