// Services as child processes for the collector's tests: the configuration owner (the real
// sync-orchestrator: an app never imports another app) and the collector itself where a test
// must kill it (SIGKILL), both built from the current sources and run from a private copy of
// dist/ so a build elsewhere cannot pull files away under them.
import { join } from 'node:path';
import { copyBuiltDist, spawnBuiltService } from '@fleetwatch/testing';

const root = join(__dirname, '../../../..');

export interface OwnerProcess {
  readonly url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Builds dist/ and copies it to tmp/<name>/dist (copyBuiltDist: a build running beside it cannot spoil the copy). */
export function privateDist(name: string): string {
  return copyBuiltDist(join(root, 'tmp', name), { build: 'always' });
}

export async function startOwner(
  dist: string,
  env: { databaseUrl: string; amqpUrl: string; redisUrl: string; redisPrefix: string },
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
    }),
    readyTimeoutMs: 30_000,
    pollMs: 200,
    logTail: 6000,
  });
}

export interface CollectorProcess {
  readonly url: string;
  readonly pid: number;
  output(): string;
  /** The exit code once it exited (null while it runs, or when a signal ended it). */
  readonly exitCode: number | null;
  /** SIGKILL: no shutdown hook runs. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** Starts a collector from `dist` with `env` (AMQP_URL, FLEETWATCH_LOCATION, COLLECTOR_SPOOL_DIR …) and waits for /readyz. */
export async function startCollectorProcess(dist: string, env: Record<string, string>): Promise<CollectorProcess> {
  const service = await spawnBuiltService({
    name: 'collector',
    main: join(dist, 'dist/apps/collector/src/main.js'),
    cwd: root,
    env: (port) => ({ LOG_LEVEL: 'warn', ...env, COLLECTOR_PORT: String(port) }),
    readyTimeoutMs: 30_000,
    pollMs: 100,
    logTail: 6000,
  });
  return {
    url: service.url,
    pid: service.child.pid as number,
    output: service.output,
    get exitCode() {
      return service.child.exitCode;
    },
    kill: service.kill,
    stop: service.stop,
  };
}
