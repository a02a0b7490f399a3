// Which Postgres, Redis and RabbitMQ the tests talk to. In order:
//  1. URLs from the environment (TEST_* first, then the app's own variables);
//  2. throwaway containers, when a container runtime answers (checked in ≤ 1 s);
//  3. the local servers on 127.0.0.1 (SPEC §10 defaults).
// `FW_TEST_SERVERS=env|testcontainers|local` forces one.

export type ServerSource = 'env' | 'testcontainers' | 'local';

export interface Servers {
  databaseUrl: string;
  redisUrl: string;
  amqpUrl: string;
  /** RabbitMQ management API base (`http://user:pass@host:15672`), when it answers. */
  amqpManagementUrl?: string;
  source: ServerSource;
}

export const LOCAL_SERVERS = {
  databaseUrl: 'postgresql://postgres@127.0.0.1:5432/postgres',
  redisUrl: 'redis://127.0.0.1:6379',
  amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
} as const;

const DETECT_TIMEOUT_MS = 1000;

/** Something testcontainers started that teardown must stop. */
export interface StoppableContainer {
  stop(): Promise<unknown>;
}

// Jest runs globalSetup and globalTeardown in the same process but loads each file
// separately, so started containers are handed over on globalThis.
const CONTAINERS_KEY = Symbol.for('fleetwatch.testing.containers');
type ContainerHolder = { [CONTAINERS_KEY]?: StoppableContainer[] };

export function startedContainers(): StoppableContainer[] {
  const holder = globalThis as ContainerHolder;
  return (holder[CONTAINERS_KEY] ??= []);
}

export async function stopStartedContainers(): Promise<void> {
  const holder = globalThis as ContainerHolder;
  const list = holder[CONTAINERS_KEY] ?? [];
  holder[CONTAINERS_KEY] = [];
  await Promise.allSettled(list.map((c) => c.stop()));
}

function env(...names: string[]): string | undefined {
  for (const n of names) {
    const v = process.env[n];
    if (v && v.trim()) return v.trim();
  }
  return undefined;
}

/** `http://user:pass@host:15672` for an AMQP URL's host and credentials. */
export function managementUrlFor(amqpUrl: string, port = 15672): string {
  const u = new URL(amqpUrl);
  const user = u.username || 'guest';
  const pass = u.password || 'guest';
  return `http://${user}:${pass}@${u.hostname || '127.0.0.1'}:${port}`;
}

/** True when the management API answers an authenticated GET within `timeoutMs`. */
export async function managementAnswers(baseUrl: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const { url, headers } = managementRequest(baseUrl, '/api/overview');
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    return res.ok;
  } catch {
    return false;
  }
}

/** fetch() refuses credentials inside URLs: move them into an Authorization header. */
export function managementRequest(baseUrl: string, path: string): { url: string; headers: Record<string, string> } {
  const u = new URL(baseUrl);
  const user = decodeURIComponent(u.username || 'guest');
  const pass = decodeURIComponent(u.password || 'guest');
  u.username = '';
  u.password = '';
  const base = u.toString().replace(/\/$/, '');
  return {
    url: base + path,
    headers: {
      authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`,
      'content-type': 'application/json',
    },
  };
}

async function withManagement(s: Omit<Servers, 'amqpManagementUrl'>, explicit?: string): Promise<Servers> {
  const candidate = explicit ?? managementUrlFor(s.amqpUrl);
  return (await managementAnswers(candidate)) ? { ...s, amqpManagementUrl: candidate } : { ...s };
}

async function containerRuntimeAvailable(): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), DETECT_TIMEOUT_MS);
      timer.unref();
    });
    return await Promise.race([getContainerRuntimeClient().then(() => true), timeout]);
  } catch {
    // "Could not find a working container runtime strategy" and friends.
    return false;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function startContainers(): Promise<
  Omit<Servers, 'amqpManagementUrl' | 'source'> & { amqpManagementUrl: string }
> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const [pg, redis, rabbit] = await Promise.all([
    new GenericContainer('postgres:16-alpine')
      .withEnvironment({ POSTGRES_HOST_AUTH_METHOD: 'trust' })
      .withExposedPorts(5432)
      .withWaitStrategy(Wait.forLogMessage(/database system is ready to accept connections/, 2))
      .start(),
    new GenericContainer('redis:7-alpine')
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
      .start(),
    new GenericContainer('rabbitmq:3.13-management-alpine')
      .withExposedPorts(5672, 15672)
      .withWaitStrategy(Wait.forLogMessage(/Server startup complete/))
      .start(),
  ]);
  startedContainers().push(pg, redis, rabbit);
  return {
    databaseUrl: `postgresql://postgres@${pg.getHost()}:${pg.getMappedPort(5432)}/postgres`,
    redisUrl: `redis://${redis.getHost()}:${redis.getMappedPort(6379)}`,
    amqpUrl: `amqp://guest:guest@${rabbit.getHost()}:${rabbit.getMappedPort(5672)}`,
    amqpManagementUrl: `http://guest:guest@${rabbit.getHost()}:${rabbit.getMappedPort(15672)}`,
  };
}

/**
 * Resolves the servers to test against. Starting containers is done at most once per
 * process; call this from jest globalSetup (it is), not from every test file — test
 * files read what the setup chose through `testEnv()`.
 */
export async function resolveServers(): Promise<Servers> {
  const forced = process.env['FW_TEST_SERVERS'];
  const fromEnv = {
    databaseUrl: env('TEST_DATABASE_URL', 'DATABASE_URL'),
    redisUrl: env('TEST_REDIS_URL', 'REDIS_URL'),
    amqpUrl: env('TEST_AMQP_URL', 'AMQP_URL'),
  };
  const anyEnv = Object.values(fromEnv).some(Boolean);

  if (forced === 'env' || (!forced && anyEnv)) {
    return withManagement(
      {
        databaseUrl: fromEnv.databaseUrl ?? LOCAL_SERVERS.databaseUrl,
        redisUrl: fromEnv.redisUrl ?? LOCAL_SERVERS.redisUrl,
        amqpUrl: fromEnv.amqpUrl ?? LOCAL_SERVERS.amqpUrl,
        source: 'env',
      },
      env('TEST_AMQP_MANAGEMENT_URL', 'AMQP_MANAGEMENT_URL'),
    );
  }
  if (forced === 'testcontainers' || (!forced && (await containerRuntimeAvailable()))) {
    return { ...(await startContainers()), source: 'testcontainers' };
  }
  return withManagement({ ...LOCAL_SERVERS, source: 'local' });
}
