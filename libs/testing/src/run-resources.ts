import {
  createDatabase,
  databaseUrlFor,
  dropDatabase,
  listDatabases,
  migrateDatabase,
  redact,
  sweepStaleDatabases,
} from './admin/postgres';
import { amqpUrlFor, amqpUser, rabbitAdmin, sweepStaleVhosts } from './admin/rabbitmq';
import { deleteKeysWithPrefix, sweepStaleKeys } from './admin/redis';
import { DB_PREFIX, newRunId, REDIS_PREFIX, VHOST_PREFIX } from './run-id';
import { resolveServers, stopStartedContainers } from './servers';
import { ENV, TestEnv, testEnv } from './test-env';

// What the jest global setup and teardown do, as plain functions (the jest files
// are thin wrappers) so they can be tested and reused by other runners.

function log(line: string): void {
  if (process.env['FW_TEST_QUIET'] !== '1') process.stderr.write(`[fleetwatch testing] ${line}\n`);
}

/** Creates the run's database (migrated), vhost and key prefix; exports them via process.env. */
export async function setUpTestRun(): Promise<TestEnv> {
  const started = Date.now();
  const servers = await resolveServers();
  const runId = newRunId();
  const admin = rabbitAdmin(servers.amqpManagementUrl);

  // Crashed runs leave resources behind; remove those older than STALE_AFTER_MS.
  const swept = await Promise.allSettled([
    sweepStaleDatabases(servers.databaseUrl),
    sweepStaleVhosts(admin),
    sweepStaleKeys(servers.redisUrl),
  ]);
  const sweptCount = swept.reduce((n, r) => n + (r.status === 'fulfilled' ? r.value.length : 0), 0);
  for (const r of swept) if (r.status === 'rejected') log(`sweep of stale test resources failed: ${String(r.reason)}`);

  const databaseName = `${DB_PREFIX}${runId}`;
  const template = `${databaseName}_tpl`;
  const vhost = `${VHOST_PREFIX}${runId}`;
  const redisPrefix = `${REDIS_PREFIX}${runId}:`;

  // Export the run id first so teardown can clean up even if the rest fails.
  process.env[ENV.runId] = runId;
  process.env[ENV.serverDatabaseUrl] = servers.databaseUrl;
  process.env[ENV.serverAmqpUrl] = servers.amqpUrl;
  process.env[ENV.redisUrl] = servers.redisUrl;
  if (servers.amqpManagementUrl) process.env[ENV.amqpManagementUrl] = servers.amqpManagementUrl;
  try {
    // The template is migrated once and never connected to afterwards, so it can be cloned.
    await createDatabase(servers.databaseUrl, template);
    await migrateDatabase(databaseUrlFor(servers.databaseUrl, template));
    await createDatabase(servers.databaseUrl, databaseName, template);
    await admin.addVhost(vhost, amqpUser(servers.amqpUrl));
  } catch (err) {
    await tearDownTestRun().catch(() => undefined);
    throw err;
  }

  Object.assign(process.env, {
    [ENV.source]: servers.source,
    [ENV.databaseUrl]: databaseUrlFor(servers.databaseUrl, databaseName),
    [ENV.databaseName]: databaseName,
    [ENV.databaseTemplate]: template,
    [ENV.amqpUrl]: amqpUrlFor(servers.amqpUrl, vhost),
    [ENV.vhost]: vhost,
    [ENV.redisPrefix]: redisPrefix,
  });
  log(
    `run ${runId} on ${servers.source} servers: db ${databaseName} (${redact(servers.databaseUrl)}), vhost ${vhost} via ${admin.via}, ` +
      `redis prefix ${redisPrefix}; ${sweptCount} stale resource(s) swept; ready in ${Date.now() - started} ms`,
  );
  return testEnv();
}

/** Drops everything named after the run id (the run's own and every isolated one). */
export async function tearDownTestRun(): Promise<void> {
  const runId = process.env[ENV.runId];
  if (!runId) return;
  const serverDb = process.env[ENV.serverDatabaseUrl];
  const redisUrl = process.env[ENV.redisUrl];
  const admin = rabbitAdmin(process.env[ENV.amqpManagementUrl]);
  const dbPrefix = `${DB_PREFIX}${runId}`;
  const vhostPrefix = `${VHOST_PREFIX}${runId}`;
  const results = await Promise.allSettled([
    (async () => {
      if (!serverDb) return;
      for (const db of await listDatabases(serverDb, dbPrefix)) await dropDatabase(serverDb, db);
    })(),
    (async () => {
      for (const v of (await admin.listVhosts()).filter((n) => n.startsWith(vhostPrefix))) await admin.deleteVhost(v);
    })(),
    redisUrl ? deleteKeysWithPrefix(redisUrl, `${REDIS_PREFIX}${runId}:`) : Promise.resolve(0),
  ]);
  await stopStartedContainers();
  for (const r of results) if (r.status === 'rejected') log(`teardown of run ${runId} incomplete: ${String(r.reason)}`);
  for (const key of Object.values(ENV)) delete process.env[key];
}
