// Shared by the gateway's integration tests (not loaded by the service): boots the real
// gateway module in-process through bootstrapService on an isolated database, vhost and
// Redis prefix, and talks to it over HTTP.

// @fastify/static requires content-disposition 2, an ES module: plain Node 20.19+ loads it
// (require of ESM), Jest's runtime on Node 20 cannot. Its only user is reply.download, which
// the gateway never calls (it serves with reply.sendFile), so tests stand in a CommonJS stub.
jest.mock('content-disposition', () => ({ create: (name: string) => `attachment; filename="${name}"` }));

import type { Redis } from 'ioredis';
import type { AddressInfo } from 'node:net';
import { createRedis, LiveStateStore } from '@fleetwatch/live-state';
import { bootstrapService, RunningService } from '@fleetwatch/observability';
import { ApiGatewayModule } from './api-gateway.module';
import { GatewayConfig, loadGatewayConfig } from './config';
import { configureGateway, GATEWAY_MAX_PARAM_LENGTH } from './gateway.setup';

export const ADMIN_PASSWORD = 'admin-password-for-tests';

/**
 * What the gateway's tests need from libs/testing. Test files pass the lib itself
 * (`import * as testing from '@fleetwatch/testing'`): only *.spec/*.int-spec files may
 * import it, and this file is neither.
 */
export interface TestDatabase {
  databaseUrl: string;
  dispose(): Promise<void>;
}
export interface TestingLib {
  testEnv(): { redisUrl: string; redisPrefix: string };
  createIsolatedDatabase(): Promise<TestDatabase>;
  createIsolatedVhost(name?: string): Promise<{ amqpUrl: string; dispose(): Promise<void> }>;
}

export interface HttpAnswer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface GatewayHarness {
  url: string;
  config: GatewayConfig;
  running: RunningService;
  database: TestDatabase;
  /** Redis with the gateway's key prefix, and live state over it (what the aggregator writes). */
  redis: Redis;
  live: LiveStateStore;
  request<T = unknown>(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string> },
  ): Promise<HttpAnswer<T>>;
  login(username: string, password: string): Promise<string>;
  close(): Promise<void>;
}

/** Boots the gateway; `name` keeps this file's vhost and Redis prefix apart from others. */
export async function startGateway(
  testing: TestingLib,
  name: string,
  options: {
    env?: Record<string, string | undefined>;
    overrides?: Partial<GatewayConfig>;
    /** Reuse (and do not drop) this database. */ database?: TestDatabase;
  } = {},
): Promise<GatewayHarness> {
  const env = testing.testEnv();
  const [database, vhost] = await Promise.all([
    options.database ?? testing.createIsolatedDatabase(),
    testing.createIsolatedVhost(`gw-${name}-${Date.now().toString(36)}`),
  ]);
  const redisPrefix = `${env.redisPrefix}gw-${name}:`;
  const config: GatewayConfig = {
    ...loadGatewayConfig({
      DATABASE_URL: database.databaseUrl,
      REDIS_URL: env.redisUrl,
      AMQP_URL: vhost.amqpUrl,
      FLEETWATCH_REDIS_PREFIX: redisPrefix,
      FLEETWATCH_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LOG_LEVEL: 'silent',
      // Not 127.0.0.1 on the default ports: whatever another test or a developer's site runs there is no version of
      // this gateway's site.
      FLEETWATCH_COMPONENT_URLS: 'none',
      ...options.env,
    }),
    ...options.overrides,
  };
  const running = await bootstrapService({
    module: ApiGatewayModule.forRoot({ ...config, port: 0 }),
    config: { ...config, port: 0 },
    trustedProxies: config.trustedProxies,
    maxParamLength: GATEWAY_MAX_PARAM_LENGTH,
    configure: (app, logger) => configureGateway(app, logger, config),
  });
  const port = (running.app.getHttpServer().address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  const redis = createRedis({ url: env.redisUrl, keyPrefix: redisPrefix, connectionName: `test-${name}` });
  const live = new LiveStateStore(redis, { keyPrefix: redisPrefix });

  const request: GatewayHarness['request'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + path, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as never, text };
  };

  return {
    url,
    config,
    running,
    database,
    redis,
    live,
    request,
    async login(username, password) {
      const res = await request<{ token: string }>('POST', '/api/v1/auth/login', { body: { username, password } });
      if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${res.text}`);
      return res.body.token;
    },
    async close() {
      await running.app.close();
      await cleanRedis(redis, redisPrefix);
      redis.disconnect();
      await Promise.all([options.database ? undefined : database.dispose(), disposeQuietly(vhost)]);
    },
  };
}

async function disposeQuietly(vhost: { dispose(): Promise<void> }): Promise<void> {
  await vhost.dispose().catch(() => undefined);
}

async function cleanRedis(redis: Redis, prefix: string): Promise<void> {
  // SCAN ignores keyPrefix: match on the full prefix, delete without it.
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.unlink(...keys.map((k) => k.slice(prefix.length)));
  } while (cursor !== '0');
}

/** Creates a viewer and an operator (each with the password `<role>-password`) as admin, and signs both in. */
export async function signInViewerAndOperator(gw: GatewayHarness): Promise<{ viewer: string; operator: string }> {
  const admin = await gw.login('admin', ADMIN_PASSWORD);
  for (const role of ['viewer', 'operator'] as const)
    await gw.request('POST', '/api/v1/users', {
      token: admin,
      body: { username: role, password: `${role}-password`, role },
    });
  return {
    viewer: await gw.login('viewer', 'viewer-password'),
    operator: await gw.login('operator', 'operator-password'),
  };
}
