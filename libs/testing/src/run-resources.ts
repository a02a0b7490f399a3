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

/**
 * Creates the run's database (migrated), vhost and key prefix; exports them via process.env.
 * With `workers` > 1 (jest --maxWorkers), each further worker gets a set of its own —
 * `<db>_w<n>`, `<vhost>-w<n>`, `<prefix>w<n>:` — which the `integration` project's
 * setup file (jest/worker-env.ts) hands to that worker: test files running side by side
 * never share a database, vhost or key space.
 */
export async function setUpTestRun(workers = 1): Promise<TestEnv> {
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
    for (let w = 2; w <= workers; w++) {
      const own = workerResources({ databaseName, vhost, redisPrefix }, w);
      await createDatabase(servers.databaseUrl, own.databaseName, template);
      await admin.addVhost(own.vhost, amqpUser(servers.amqpUrl));
    }
  } catch (err) {
    await tearDownTestRun().catch(() => undefined);
    throw err;
  }

  Object.assign(process.env, {
    [ENV.scope]: runId,
    [ENV.source]: servers.source,
    [ENV.databaseUrl]: databaseUrlFor(servers.databaseUrl, databaseName),
    [ENV.databaseName]: databaseName,
    [ENV.databaseTemplate]: template,
    [ENV.amqpUrl]: amqpUrlFor(servers.amqpUrl, vhost),
    [ENV.vhost]: vhost,
    [ENV.redisPrefix]: redisPrefix,
    [ENV.workers]: String(Math.max(1, workers)),
  });
  log(
    `run ${runId} on ${servers.source} servers: db ${databaseName} (${redact(servers.databaseUrl)}), vhost ${vhost} via ${admin.via}, ` +
      `redis prefix ${redisPrefix}${workers > 1 ? ` (workers 2–${workers}: the same with _w<n>)` : ''}; ` +
      `${sweptCount} stale resource(s) swept; ready in ${Date.now() - started} ms`,
  );
  return testEnv();
}

/** The names of jest worker `worker`'s own database, vhost and key prefix (worker 1 uses the run's). */
export function workerResources(
  run: { databaseName: string; vhost: string; redisPrefix: string },
  worker: number,
): { databaseName: string; vhost: string; redisPrefix: string } {
  if (worker <= 1) return { ...run };
  return {
    databaseName: `${run.databaseName}_w${worker}`,
    vhost: `${run.vhost}-w${worker}`,
    redisPrefix: `${run.redisPrefix}w${worker}:`,
  };
}

/**
 * Points this process's testEnv() at jest worker `worker`'s own resources (made by
 * setUpTestRun(workers)). Throws when the run made fewer sets than that: sharing them
 * silently would let side-by-side test files see each other's rows, queues and keys.
 */
export function useWorkerResources(worker: number, env: NodeJS.ProcessEnv = process.env): void {
  const workers = Number(env[ENV.workers] ?? '1');
  if (worker <= 1 || !env[ENV.runId]) return;
  if (!(worker <= workers)) {
    throw new Error(
      `jest worker ${worker} has no resources of its own: the global setup made ${workers} set(s). ` +
        `Run the integration project with --maxWorkers=${workers} or fewer.`,
    );
  }
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`useWorkerResources(): ${name} is not set — the integration global setup did not finish`);
    return v;
  };
  // The run's own names are kept so a second call (one per test file in the same worker) is idempotent.
  const base = {
    databaseName: env[ENV.runDatabaseName] ?? need(ENV.databaseName),
    vhost: env[ENV.runVhost] ?? need(ENV.vhost),
    redisPrefix: env[ENV.runRedisPrefix] ?? need(ENV.redisPrefix),
  };
  const own = workerResources(base, worker);
  Object.assign(env, {
    [ENV.scope]: `${need(ENV.runId)}-w${worker}`,
    [ENV.runDatabaseName]: base.databaseName,
    [ENV.runVhost]: base.vhost,
    [ENV.runRedisPrefix]: base.redisPrefix,
    [ENV.databaseName]: own.databaseName,
    [ENV.databaseUrl]: databaseUrlFor(need(ENV.serverDatabaseUrl), own.databaseName),
    [ENV.vhost]: own.vhost,
    [ENV.amqpUrl]: amqpUrlFor(need(ENV.serverAmqpUrl), own.vhost),
    [ENV.redisPrefix]: own.redisPrefix,
  });
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
