import { join } from 'node:path';
import { copyBuiltDistAsync, spawnBuiltService } from '@fleetwatch/testing';

// The configuration owner for the gateway's route tests: the real sync-orchestrator,
// built from the current sources and run as a child process (an app never imports
// another app), from a private copy of dist/ so another build cannot pull it away.

const root = join(__dirname, '../../../..');

export interface OwnerProcess {
  readonly url: string;
  /** The last few KB it printed (for failure messages). */
  output(): string;
  /** SIGTERM (graceful: in-flight requests finish), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/**
 * Builds dist/ now (so the owner is today's code) and copies it under tmp/<name> (copyBuiltDistAsync: the gateway
 * already runs in this process, and a synchronous build held its event loop past the AMQP heartbeats).
 */
export function privateOwnerDist(name: string): Promise<string> {
  return copyBuiltDistAsync(join(root, 'tmp', name), { build: 'always' });
}

/** The channel-secret key the owner process runs with (FLEETWATCH_ENCRYPTION_KEY). */
export const OWNER_ENCRYPTION_KEY = 'b'.repeat(64);

/**
 * Starts sync-orchestrator on the given servers and waits until it is ready. The shipped default
 * alert rules are not seeded (versions start at 1 with the test's own writes) unless `extraEnv`
 * says FLEETWATCH_DEFAULT_ALERT_RULES=true.
 */
export async function startOwnerProcess(
  dist: string,
  env: { databaseUrl: string; amqpUrl: string; redisUrl: string; redisPrefix: string },
  extraEnv: Record<string, string> = {},
): Promise<OwnerProcess> {
  return spawnBuiltService({
    name: 'sync-orchestrator',
    main: join(dist, 'dist/apps/sync-orchestrator/src/main.js'),
    cwd: root,
    env: (port) => ({
      DATABASE_URL: env.databaseUrl,
      AMQP_URL: env.amqpUrl,
      REDIS_URL: env.redisUrl,
      FLEETWATCH_REDIS_PREFIX: env.redisPrefix,
      SYNC_ORCHESTRATOR_PORT: String(port),
      LOG_LEVEL: 'warn',
      FLEETWATCH_DEFAULT_ALERT_RULES: 'false',
      FLEETWATCH_ENCRYPTION_KEY: OWNER_ENCRYPTION_KEY,
      ...extraEnv,
    }),
    readyTimeoutMs: 30_000,
    pollMs: 200,
    logTail: 6000,
  });
}
