import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Counter, register } from 'prom-client';
import { ApiExcludeController } from '@nestjs/swagger';
import {
  EXCLUDE_FROM_OPENAPI,
  HealthController,
  READINESS_LOG_INTERVAL_MS,
  readinessFailure,
  ReadinessRegistry,
  SERVICE_IDENTITY,
  ServiceIdentity,
} from './health';

describe('ReadinessRegistry', () => {
  it('is ready with no checks, and with every check passing', async () => {
    const r = new ReadinessRegistry();
    expect(await r.evaluate()).toEqual({ ready: true, checks: [] });
    r.register({ name: 'database', check: async () => undefined });
    r.register({ name: 'redis', check: () => undefined });
    const { ready, checks } = await r.evaluate();
    expect(ready).toBe(true);
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['database', true],
      ['redis', true],
    ]);
  });

  it('is not ready when one check rejects or throws synchronously, naming it and a reason category, not its error', async () => {
    const r = new ReadinessRegistry();
    r.register({ name: 'database', check: async () => undefined });
    r.register({
      name: 'redis',
      check: () =>
        Promise.reject(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:6379'), { code: 'ECONNREFUSED' })),
    });
    r.register({
      name: 'bus',
      check: () => {
        throw new Error('channel closed');
      },
    });
    r.register({ name: 'broker', check: () => Promise.reject(readinessFailure('blocked', 'alarm: low on memory')) });
    // A code on the error's cause (a driver wrapping the socket error) counts too.
    r.register({
      name: 'dns',
      check: () => Promise.reject(new Error('lookup failed', { cause: { code: 'ENOTFOUND' } })),
    });
    const { ready, checks } = await r.evaluate();
    expect(ready).toBe(false);
    expect(checks).toEqual([
      { name: 'database', ok: true, ms: expect.any(Number) },
      { name: 'redis', ok: false, error: 'unreachable', ms: expect.any(Number) },
      { name: 'bus', ok: false, error: 'unavailable', ms: expect.any(Number) },
      { name: 'broker', ok: false, error: 'blocked', ms: expect.any(Number) },
      { name: 'dns', ok: false, error: 'unreachable', ms: expect.any(Number) },
    ]);
  });

  it("a reason that is not one of the fixed words is not shown: the check's own text never reaches the answer", async () => {
    const r = new ReadinessRegistry();
    r.register({
      name: 'database',
      check: () => Promise.reject(Object.assign(new Error('x'), { readinessReason: 'db.internal is down' })),
    });
    expect((await r.evaluate()).checks[0]).toMatchObject({ ok: false, error: 'unavailable' });
  });

  it('fails a check that does not answer within the timeout, without waiting for it', async () => {
    const r = new ReadinessRegistry();
    r.register({ name: 'database', check: () => new Promise(() => undefined) });
    const started = Date.now();
    const { ready, checks } = await r.evaluate(50);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(ready).toBe(false);
    expect(checks[0]).toMatchObject({ name: 'database', ok: false, error: 'timeout' });
  });

  describe('logs what /readyz does not show', () => {
    const logger = { warn: jest.fn(), info: jest.fn() };
    const secret = 'password authentication failed for user "fleet" at postgresql://fleet:s3cret@db-7.internal/fw';
    let failing = true;
    let r: ReadinessRegistry;
    beforeEach(() => {
      jest.useFakeTimers({ now: 1_000_000, doNotFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'nextTick'] });
      logger.warn.mockClear();
      logger.info.mockClear();
      failing = true;
      r = new ReadinessRegistry(logger);
      r.register({ name: 'database', check: () => (failing ? Promise.reject(new Error(secret)) : undefined) });
    });
    afterEach(() => jest.useRealTimers());

    it('the full error (credentials masked), at most once per interval per check however often it is probed', async () => {
      for (let i = 0; i < 30; i++) {
        await r.evaluate();
        jest.setSystemTime(Date.now() + 1_000); // a probe every second
      }
      expect(logger.warn).toHaveBeenCalledTimes(1);
      const [fields, line] = logger.warn.mock.calls[0] as [Record<string, unknown>, string];
      expect(fields).toMatchObject({ check: 'database', reason: 'unavailable', unloggedFailures: 0 });
      expect(line).toContain('db-7.internal');
      expect(line).toContain('fleet:***@');
      expect(JSON.stringify(logger.warn.mock.calls)).not.toContain('s3cret');

      jest.setSystemTime(1_000_000 + READINESS_LOG_INTERVAL_MS);
      await r.evaluate();
      expect(logger.warn).toHaveBeenCalledTimes(2);
      expect(logger.warn.mock.calls[1][0]).toMatchObject({ unloggedFailures: 29 });
    });

    it('a recovery once, after a logged failure; a flapping check writes no more than a line each way per interval', async () => {
      await r.evaluate();
      failing = false;
      await r.evaluate();
      await r.evaluate();
      expect(logger.info).toHaveBeenCalledTimes(1);
      expect(logger.info.mock.calls[0][1]).toMatch(/database passes again/);
      for (let i = 0; i < 10; i++) {
        failing = i % 2 === 0;
        await r.evaluate();
      }
      expect(logger.warn).toHaveBeenCalledTimes(1);
      expect(logger.info).toHaveBeenCalledTimes(1);
    });
  });

  it('runs the checks in parallel', async () => {
    const r = new ReadinessRegistry();
    for (const name of ['a', 'b', 'c']) r.register({ name, check: () => new Promise((ok) => setTimeout(ok, 300)) });
    const started = Date.now();
    expect((await r.evaluate()).ready).toBe(true);
    expect(Date.now() - started).toBeLessThan(850);
  });

  it('replaces a check registered again under the same name', async () => {
    const r = new ReadinessRegistry();
    r.register({ name: 'bus', check: () => Promise.reject(new Error('old')) });
    r.register({ name: 'bus', check: async () => undefined });
    expect(await r.evaluate()).toEqual({ ready: true, checks: [{ name: 'bus', ok: true, ms: expect.any(Number) }] });
  });

  it('is not ready once draining, even with healthy dependencies', async () => {
    const r = new ReadinessRegistry();
    r.register({ name: 'database', check: async () => undefined });
    expect(r.isDraining).toBe(false);
    r.markDraining();
    expect(r.isDraining).toBe(true);
    const { ready, checks } = await r.evaluate();
    expect(ready).toBe(false);
    expect(checks).toContainEqual({ name: 'shutdown', ok: false, error: 'draining', ms: 0 });
  });
});

describe('HealthController on a Fastify app', () => {
  const identity: ServiceIdentity = {
    service: 'aggregator',
    site: 'eu',
    location: 'eu-west-1',
    version: '1.2.3',
    startedAt: new Date(),
  };
  let app: NestFastifyApplication;
  let readiness: ReadinessRegistry;
  let healthy = true;

  beforeAll(async () => {
    @Module({
      controllers: [HealthController],
      providers: [ReadinessRegistry, { provide: SERVICE_IDENTITY, useValue: identity }],
    })
    class HealthModule {}
    app = await NestFactory.create<NestFastifyApplication>(HealthModule, new FastifyAdapter(), { logger: false });
    await app.init();
    await app.getHttpAdapter().getInstance().ready();
    readiness = app.get(ReadinessRegistry);
    readiness.register({
      name: 'database',
      check: () =>
        healthy
          ? undefined
          : Promise.reject(new Error('connect to postgresql://fw:s3cret@db-1.internal:5432/fleetwatch failed')),
    });
    new Counter({ name: 'fleetwatch_health_spec_probes_total', help: 'A counter this spec registers.' }).inc(3);
  });
  afterAll(async () => {
    register.removeSingleMetric('fleetwatch_health_spec_probes_total');
    await app?.close();
  });

  const get = (url: string) => app.getHttpAdapter().getInstance().inject({ method: 'GET', url });

  it('/healthz answers 200 without asking dependencies', async () => {
    healthy = false;
    const res = await get('/healthz');
    healthy = true;
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', service: 'aggregator', uptimeSeconds: expect.any(Number) });
  });

  it('/readyz answers 200 with each check when ready, 503 when a dependency fails', async () => {
    const ok = await get('/readyz');
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['cache-control']).toBe('no-store');
    expect(ok.json()).toEqual({
      status: 'ready',
      service: 'aggregator',
      checks: [{ name: 'database', ok: true, ms: expect.any(Number) }],
    });

    healthy = false;
    const down = await get('/readyz');
    healthy = true;
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({
      status: 'not_ready',
      service: 'aggregator',
      checks: [{ name: 'database', ok: false, error: 'unavailable', ms: expect.any(Number) }],
    });
    // Anyone may ask /readyz: the error's own text (hosts, databases, credentials in URLs) stays in the log.
    expect(down.body).not.toContain('db-1.internal');
    expect(down.body).not.toContain('s3cret');
  });

  it('/metrics serves the process registry in the Prometheus text format', async () => {
    const res = await get('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe(register.contentType);
    expect(res.body).toContain('# TYPE fleetwatch_health_spec_probes_total counter');
    expect(res.body).toContain('fleetwatch_health_spec_probes_total 3');
  });
});

describe('EXCLUDE_FROM_OPENAPI', () => {
  it('records what @nestjs/swagger ApiExcludeController() records', () => {
    class BySwagger {}
    class ByUs {}
    ApiExcludeController()(BySwagger);
    EXCLUDE_FROM_OPENAPI(ByUs);
    const keys = Reflect.getMetadataKeys(BySwagger);
    expect(keys.length).toBeGreaterThan(0);
    expect(Reflect.getMetadataKeys(ByUs)).toEqual(keys);
    for (const key of keys) expect(Reflect.getMetadata(key, ByUs)).toEqual(Reflect.getMetadata(key, BySwagger));
  });
});
