import type { ServerSource } from './servers';

/** What the jest global setup created for this run, as a test file sees it. */
export interface TestEnv {
  runId: string;
  /**
   * This jest worker's part of the run: the run id for worker 1, `<runid>-w<n>` for worker n. Name what a test
   * creates for itself after it (vhosts, directories) so files running side by side never pick the same name.
   */
  scope: string;
  source: ServerSource;
  /** The run's migrated database `fw_test_<runid>`. */
  databaseUrl: string;
  databaseName: string;
  /** The run's vhost `fw-test-<runid>` (guest has all permissions). */
  amqpUrl: string;
  vhost: string;
  redisUrl: string;
  /** Put every key under this (`fwtest:<runid>:`), e.g. as ioredis `keyPrefix`. */
  redisPrefix: string;
  /** The servers themselves, for tests that make their own resources. */
  server: {
    databaseUrl: string;
    amqpUrl: string;
    amqpManagementUrl?: string;
    redisUrl: string;
    /** Migrated template database that createIsolatedDatabase() clones. */
    databaseTemplate?: string;
  };
}

/** Variable names the global setup hands to the test workers. */
export const ENV = {
  runId: 'FW_TEST_RUN_ID',
  scope: 'FW_TEST_SCOPE',
  source: 'FW_TEST_SOURCE',
  databaseUrl: 'FW_TEST_DATABASE_URL',
  databaseName: 'FW_TEST_DATABASE',
  amqpUrl: 'FW_TEST_AMQP_URL',
  vhost: 'FW_TEST_VHOST',
  redisUrl: 'FW_TEST_REDIS_URL',
  redisPrefix: 'FW_TEST_REDIS_PREFIX',
  serverDatabaseUrl: 'FW_TEST_SERVER_DATABASE_URL',
  serverAmqpUrl: 'FW_TEST_SERVER_AMQP_URL',
  amqpManagementUrl: 'FW_TEST_AMQP_MANAGEMENT_URL',
  databaseTemplate: 'FW_TEST_DATABASE_TEMPLATE',
  /** How many jest workers have resources of their own (setUpTestRun(workers)). */
  workers: 'FW_TEST_WORKERS',
  /** The run's own names, kept when a worker's replace them (useWorkerResources). */
  runDatabaseName: 'FW_TEST_RUN_DATABASE',
  runVhost: 'FW_TEST_RUN_VHOST',
  runRedisPrefix: 'FW_TEST_RUN_REDIS_PREFIX',
} as const;

/** The run's isolated servers. Throws when the integration global setup did not run. */
export function testEnv(): TestEnv {
  const get = (name: string): string => {
    const v = process.env[name];
    if (!v) {
      throw new Error(
        `testEnv(): ${name} is not set — the integration global setup (libs/testing/src/jest/global-setup.ts) did not run. ` +
          `Name the file *.int-spec.ts and run it with \`npx jest --selectProjects integration <path>\`.`,
      );
    }
    return v;
  };
  const optional = (name: string): string | undefined => process.env[name] || undefined;
  const env: TestEnv = {
    runId: get(ENV.runId),
    scope: optional(ENV.scope) ?? get(ENV.runId),
    source: get(ENV.source) as ServerSource,
    databaseUrl: get(ENV.databaseUrl),
    databaseName: get(ENV.databaseName),
    amqpUrl: get(ENV.amqpUrl),
    vhost: get(ENV.vhost),
    redisUrl: get(ENV.redisUrl),
    redisPrefix: get(ENV.redisPrefix),
    server: { databaseUrl: get(ENV.serverDatabaseUrl), amqpUrl: get(ENV.serverAmqpUrl), redisUrl: get(ENV.redisUrl) },
  };
  const mgmt = optional(ENV.amqpManagementUrl);
  if (mgmt) env.server.amqpManagementUrl = mgmt;
  const tpl = optional(ENV.databaseTemplate);
  if (tpl) env.server.databaseTemplate = tpl;
  return env;
}

/** testEnv() when the global setup ran, else null. */
export function maybeTestEnv(): TestEnv | null {
  return process.env[ENV.runId] ? testEnv() : null;
}
