import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { Counter, register } from 'prom-client';
import { ApiExcludeController } from '@nestjs/swagger';
import { EXCLUDE_FROM_OPENAPI, HealthController, ReadinessRegistry, SERVICE_IDENTITY, ServiceIdentity } from './health';

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

  it('is not ready when one check rejects or throws synchronously, naming it and its error', async () => {
    const r = new ReadinessRegistry();
    r.register({ name: 'database', check: async () => undefined });
    r.register({ name: 'redis', check: () => Promise.reject(new Error('ECONNREFUSED')) });
    r.register({
      name: 'bus',
      check: () => {
        throw new Error('channel closed');
      },
    });
    const { ready, checks } = await r.evaluate();
    expect(ready).toBe(false);
    expect(checks).toEqual([
      { name: 'database', ok: true, ms: expect.any(Number) },
      { name: 'redis', ok: false, error: 'ECONNREFUSED', ms: expect.any(Number) },
      { name: 'bus', ok: false, error: 'channel closed', ms: expect.any(Number) },
    ]);
  });

  it('fails a check that does not answer within the timeout, without waiting for it', async () => {
    const r = new ReadinessRegistry();
    r.register({ name: 'database', check: () => new Promise(() => undefined) });
    const started = Date.now();
    const { ready, checks } = await r.evaluate(50);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(ready).toBe(false);
    expect(checks[0]).toMatchObject({ name: 'database', ok: false, error: 'no answer within 50 ms' });
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
      check: () => (healthy ? undefined : Promise.reject(new Error('database is away'))),
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
    expect(down.json()).toMatchObject({
      status: 'not_ready',
      checks: [{ name: 'database', ok: false, error: 'database is away' }],
    });
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
