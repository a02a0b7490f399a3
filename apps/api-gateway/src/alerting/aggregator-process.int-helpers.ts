import { join } from 'node:path';
import { OWNER_ENCRYPTION_KEY } from '../checks/owner-process.int-helpers';
import { spawnBuiltService } from '@fleetwatch/testing';

// The aggregator for the gateway's test-send route tests: the real service, run as a child process from a
// private copy of dist/ (privateOwnerDist builds it), with the same channel-secret key as the owner process.

const root = join(__dirname, '../../../..');

export interface AggregatorProcess {
  readonly url: string;
  /** The last few KB it printed. */
  output(): string;
  stop(): Promise<void>;
}

export async function startAggregatorProcess(
  dist: string,
  env: { databaseUrl: string; amqpUrl: string; redisUrl: string; redisPrefix: string },
  extraEnv: Record<string, string> = {},
): Promise<AggregatorProcess> {
  return spawnBuiltService({
    name: 'aggregator',
    main: join(dist, 'dist/apps/aggregator/src/main.js'),
    cwd: root,
    env: (port) => ({
      DATABASE_URL: env.databaseUrl,
      AMQP_URL: env.amqpUrl,
      REDIS_URL: env.redisUrl,
      FLEETWATCH_REDIS_PREFIX: env.redisPrefix,
      AGGREGATOR_PORT: String(port),
      LOG_LEVEL: 'info',
      FLEETWATCH_ENCRYPTION_KEY: OWNER_ENCRYPTION_KEY,
      ...extraEnv,
    }),
    readyTimeoutMs: 45_000,
    pollMs: 250,
    logTail: 20_000,
  });
}

/**
 * The aggregator beside a test gateway: on its database and Redis prefix, on the vhost given (the gateway's own may
 * reach the broker through a proxy the test cuts), sweeping every 200 ms and committing after 20 ms.
 */
export function startAggregatorBeside(
  dist: string,
  gw: { database: { databaseUrl: string }; config: { redisUrl: string; redisPrefix: string } },
  amqpUrl: string,
  extraEnv: Record<string, string> = {},
): Promise<AggregatorProcess> {
  return startAggregatorProcess(
    dist,
    { databaseUrl: gw.database.databaseUrl, amqpUrl, redisUrl: gw.config.redisUrl, redisPrefix: gw.config.redisPrefix },
    { SWEEP_INTERVAL_MS: '200', AGGREGATOR_BATCH_WAIT_MS: '20', LOG_LEVEL: 'warn', ...extraEnv },
  );
}
