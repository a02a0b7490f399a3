import { createDatabase, databaseUrlFor, dropDatabase, migrateDatabase } from './admin/postgres';
import { amqpUrlFor, amqpUser, rabbitAdmin } from './admin/rabbitmq';
import { DB_PREFIX, newRunId, shortId, VHOST_PREFIX } from './run-id';
import { LOCAL_SERVERS, managementAnswers, managementUrlFor } from './servers';
import { maybeTestEnv } from './test-env';

// Private resources for one test file, on top of the run's shared ones. Named after the
// run id, so the run's teardown — or the next run's sweep — removes them even when a
// test forgets dispose().

export interface IsolatedVhost {
  /** AMQP URL with the new vhost (guest, or the URL's user, has all permissions). */
  amqpUrl: string;
  vhost: string;
  dispose(): Promise<void>;
}

export interface IsolatedDatabase {
  /** URL of a new, migrated database. */
  databaseUrl: string;
  databaseName: string;
  dispose(): Promise<void>;
}

function serverAmqp(): { amqpUrl: string; managementUrl: Promise<string | undefined>; runId: string } {
  const env = maybeTestEnv();
  if (env)
    return {
      amqpUrl: env.server.amqpUrl,
      managementUrl: Promise.resolve(env.server.amqpManagementUrl),
      // The worker's scope (`<runid>-w<n>` beyond worker 1): files side by side may ask for the same name.
      runId: env.scope,
    };
  // Outside the integration project (no global setup): the local server, a fresh run id.
  const amqpUrl = process.env['TEST_AMQP_URL'] ?? process.env['AMQP_URL'] ?? LOCAL_SERVERS.amqpUrl;
  const candidate = managementUrlFor(amqpUrl);
  return {
    amqpUrl,
    managementUrl: managementAnswers(candidate).then((ok) => (ok ? candidate : undefined)),
    runId: newRunId(),
  };
}

/** A vhost of its own: `fw-test-<runid>-<name>` (`fw-test-<runid>-w<n>-<name>` in jest worker n > 1). */
export async function createIsolatedVhost(name?: string): Promise<IsolatedVhost> {
  const { amqpUrl: base, managementUrl, runId } = serverAmqp();
  const suffix = (name ?? shortId())
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .slice(0, 60);
  const vhost = `${VHOST_PREFIX}${runId}-${suffix}`;
  const admin = rabbitAdmin(await managementUrl);
  await admin.addVhost(vhost, amqpUser(base));
  let disposed = false;
  return {
    amqpUrl: amqpUrlFor(base, vhost),
    vhost,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await admin.deleteVhost(vhost);
    },
  };
}

/**
 * A migrated database of its own: `fw_test_<runid>_<random>`. Cloned from the run's
 * migrated template (fast) when the global setup made one, else migrated from scratch.
 */
export async function createIsolatedDatabase(): Promise<IsolatedDatabase> {
  const env = maybeTestEnv();
  const serverUrl =
    env?.server.databaseUrl ??
    process.env['TEST_DATABASE_URL'] ??
    process.env['DATABASE_URL'] ??
    LOCAL_SERVERS.databaseUrl;
  const runId = env?.runId ?? newRunId();
  const name = `${DB_PREFIX}${runId}_${shortId()}`;
  const template = env?.server.databaseTemplate;
  const databaseUrl = databaseUrlFor(serverUrl, name);
  if (template) {
    await createDatabase(serverUrl, name, template);
  } else {
    await createDatabase(serverUrl, name);
    try {
      await migrateDatabase(databaseUrl);
    } catch (err) {
      await dropDatabase(serverUrl, name).catch(() => undefined);
      throw err;
    }
  }
  let disposed = false;
  return {
    databaseUrl,
    databaseName: name,
    async dispose() {
      if (disposed) return;
      disposed = true;
      await dropDatabase(serverUrl, name);
    },
  };
}
