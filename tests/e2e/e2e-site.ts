import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import {
  createIsolatedDatabase,
  createIsolatedVhost,
  testEnv,
  waitFor,
  type IsolatedDatabase,
  type IsolatedVhost,
} from '@fleetwatch/testing';

// A site of built services (dist/, as `npm test` builds it) on this run's isolated
// database, vhost and Redis prefix, for tests across several running services.

const root = join(__dirname, '../..');

export type ServiceName = 'api-gateway' | 'status-ingest' | 'aggregator' | 'collector' | 'sync-orchestrator';
const PORT_VARIABLE: Record<ServiceName, string> = {
  'api-gateway': 'API_GATEWAY_PORT',
  'status-ingest': 'STATUS_INGEST_PORT',
  collector: 'COLLECTOR_PORT',
  aggregator: 'AGGREGATOR_PORT',
  'sync-orchestrator': 'SYNC_ORCHESTRATOR_PORT',
};

export interface E2eSite {
  db: IsolatedDatabase;
  vhost: IsolatedVhost;
  env: Record<string, string>;
  redisPrefix: string;
  url(service: ServiceName): string;
  /** Logs in as admin and makes an API key with these scopes. */
  apiKey(scopes: string[], name?: string): Promise<{ id: string; key: string }>;
  adminToken(): Promise<string>;
  stop(): Promise<void>;
}

export const ADMIN_PASSWORD = 'e2e-admin-password';

/** Starts the services (each on the port given) and waits until every one is ready. */
export async function startSite(
  name: string,
  ports: Partial<Record<ServiceName, number>>,
  extraEnv: Record<string, string> = {},
): Promise<E2eSite> {
  const [db, vhost] = await Promise.all([createIsolatedDatabase(), createIsolatedVhost(name)]);
  const redisPrefix = `${testEnv().redisPrefix}${name}:`;
  const env: Record<string, string> = {
    DATABASE_URL: db.databaseUrl,
    AMQP_URL: vhost.amqpUrl,
    REDIS_URL: testEnv().redisUrl,
    FLEETWATCH_REDIS_PREFIX: redisPrefix,
    FLEETWATCH_ADMIN_PASSWORD: ADMIN_PASSWORD,
    ...Object.fromEntries(Object.entries(ports).map(([s, p]) => [PORT_VARIABLE[s as ServiceName], String(p)])),
    // The gateway asks for versions only the services this site runs (not whatever listens on the others' ports).
    FLEETWATCH_COMPONENT_URLS:
      Object.entries(ports)
        .filter(([s]) => s !== 'api-gateway')
        .map(([s, p]) => `${s}=http://127.0.0.1:${p}`)
        .join(',') || 'none',
    ...extraEnv,
  };
  const children: ChildProcess[] = [];
  for (const service of Object.keys(ports) as ServiceName[]) {
    children.push(
      spawn(process.execPath, [join(root, 'dist/apps', service, 'src/main.js')], {
        cwd: root,
        env: { ...process.env, ...env, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'ignore', 'inherit'],
      }),
    );
  }
  const url = (service: ServiceName) => `http://127.0.0.1:${ports[service] as number}`;
  const stop = async () => {
    await Promise.all(
      children.map((c) =>
        c.exitCode !== null || c.signalCode !== null
          ? null
          : new Promise((resolve) => {
              c.once('exit', resolve);
              c.kill('SIGINT');
            }),
      ),
    );
    await Promise.allSettled([vhost.dispose(), db.dispose()]);
  };
  try {
    for (const service of Object.keys(ports) as ServiceName[]) {
      await waitFor(async () => (await fetch(`${url(service)}/readyz`).catch(() => null))?.status === 200, {
        timeoutMs: 60_000,
        intervalMs: 200,
        description: `${service} /readyz`,
      });
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const adminToken = async () => {
    const login = await fetch(`${url('api-gateway')}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
    });
    if (login.status !== 200) throw new Error(`login answered ${login.status}`);
    return ((await login.json()) as { token: string }).token;
  };
  return {
    db,
    vhost,
    env,
    redisPrefix,
    url,
    adminToken,
    async apiKey(scopes, keyName = `e2e-${scopes.join('-')}`) {
      const token = await adminToken();
      const created = await fetch(`${url('api-gateway')}/api/v1/api-keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ name: keyName, scopes }),
      });
      if (created.status !== 201)
        throw new Error(`creating an API key answered ${created.status}: ${await created.text()}`);
      return (await created.json()) as { id: string; key: string };
    },
    stop,
  };
}
