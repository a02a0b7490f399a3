import 'reflect-metadata';
import { BeforeApplicationShutdown, Controller, Get, Injectable, Module, OnModuleDestroy, Req } from '@nestjs/common';
import type { CommonConfig } from '@fleetwatch/config';
import type { FastifyRequest } from 'fastify';
import { AsyncResource } from 'node:async_hooks';
import type { AddressInfo } from 'node:net';
import { register } from 'prom-client';
import { BootDependency, bootstrapService, RunningService, trustProxyFunction } from './bootstrap';
import { ReadinessRegistry } from './health';

const config = (overrides: Partial<CommonConfig> = {}): CommonConfig => ({
  service: 'collector',
  site: 'test-site',
  role: 'standalone',
  location: 'test-location',
  logLevel: 'silent',
  port: 0,
  bootTimeoutMs: 2_000,
  shutdownTimeoutMs: 5_000,
  redisPrefix: '',
  ...overrides,
});

/** Shutdown steps in the order they happened. */
const events: string[] = [];
let releaseSlow: (() => void) | null = null;
let slowEntered: (() => void) | null = null;
let hangDestroy: Promise<void> | null = null;

@Controller('probe')
class ProbeController {
  @Get('slow')
  async slow(): Promise<{ done: true }> {
    await new Promise<void>((resolve) => {
      releaseSlow = resolve;
      slowEntered?.();
    });
    events.push('slow request answered');
    return { done: true };
  }
  @Get('ip')
  ip(@Req() req: FastifyRequest): { ip: string } {
    return { ip: req.ip };
  }
}

@Injectable()
class ShutdownProbe implements OnModuleDestroy, BeforeApplicationShutdown {
  constructor(private readonly readiness: ReadinessRegistry) {}
  async onModuleDestroy(): Promise<void> {
    events.push(`module destroy (draining: ${this.readiness.isDraining})`);
    if (hangDestroy) await hangDestroy;
  }
  beforeApplicationShutdown(): void {
    events.push('before shutdown');
  }
}

@Module({ controllers: [ProbeController], providers: [ShutdownProbe] })
class ProbeModule {}

const portOf = (s: RunningService) => (s.app.getHttpServer().address() as AddressInfo).port;

describe('trustProxyFunction', () => {
  it('trusts no proxy when none is configured', () => {
    expect(trustProxyFunction(undefined)).toBe(false);
    expect(trustProxyFunction([])).toBe(false);
  });

  it('trusts exactly the addresses inside the configured CIDRs', () => {
    const trust = trustProxyFunction(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7']);
    if (!trust) throw new Error('expected a function');
    expect(trust('10.1.2.3', 0)).toBe(true);
    expect(trust('::ffff:10.1.2.3', 0)).toBe(true);
    expect(trust('2001:db8::1', 0)).toBe(true);
    expect(trust('192.0.2.7', 0)).toBe(true);
    expect(trust('192.0.2.8', 0)).toBe(false);
    expect(trust('11.0.0.1', 0)).toBe(false);
    expect(trust('not-an-ip', 0)).toBe(false);
  });
});

describe('bootstrapService', () => {
  const started: RunningService[] = [];
  // bootstrapService installs the lean AsyncResource bind; core modules are shared by the spec files of a Jest
  // worker, so put Node's back for those after this one (async-resource-bind.spec compares against it).
  const nativeAsyncResourceBind = AsyncResource.prototype.bind;
  afterAll(() => {
    AsyncResource.prototype.bind = nativeAsyncResourceBind;
  });
  let signalListeners: { SIGINT: number; SIGTERM: number; unhandledRejection: number };

  beforeAll(() => {
    signalListeners = {
      SIGINT: process.listenerCount('SIGINT'),
      SIGTERM: process.listenerCount('SIGTERM'),
      unhandledRejection: process.listenerCount('unhandledRejection'),
    };
  });
  beforeEach(() => {
    events.length = 0;
    releaseSlow = null;
    slowEntered = null;
    hangDestroy = null;
  });
  afterEach(async () => {
    releaseSlow?.();
    for (const s of started.splice(0)) await s.shutdown('test-cleanup');
    // bootstrapService wires process signals; leave the test process as it was.
    for (const l of process.listeners('SIGINT').slice(signalListeners.SIGINT)) process.removeListener('SIGINT', l);
    for (const l of process.listeners('SIGTERM').slice(signalListeners.SIGTERM)) process.removeListener('SIGTERM', l);
    for (const l of process.listeners('unhandledRejection').slice(signalListeners.unhandledRejection))
      process.removeListener('unhandledRejection', l);
    jest.restoreAllMocks();
  });

  /** process.exit mocked: resolves with the first code it is called with (the process goes on). */
  const exitCalled = () =>
    new Promise<number | undefined>((resolve) => {
      jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
        resolve(code);
        return undefined as never;
      }) as typeof process.exit);
    });

  const start = async (options: Partial<Parameters<typeof bootstrapService>[0]> = {}) => {
    const s = await bootstrapService({ module: ProbeModule, config: config(), ...options });
    started.push(s);
    return s;
  };

  it("answers /readyz with a failing check's reason word, and writes its error to the service's log", async () => {
    const s = await start();
    const warn = jest.spyOn(s.logger, 'warn');
    s.app.get(ReadinessRegistry).register({
      name: 'database',
      check: () => Promise.reject(new Error('relation "users" does not exist on db-3.internal')),
    });
    const res = await fetch(`http://127.0.0.1:${portOf(s)}/readyz`);
    expect(res.status).toBe(503);
    const body = await res.text();
    expect(JSON.parse(body)).toMatchObject({ checks: [{ name: 'database', ok: false, error: 'unavailable' }] });
    expect(body).not.toContain('db-3.internal');
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ check: 'database', reason: 'unavailable' }),
      expect.stringContaining('relation "users" does not exist on db-3.internal'),
    );
  });

  it('serves health, readiness and metrics with the service identity', async () => {
    const s = await start();
    const base = `http://127.0.0.1:${portOf(s)}`;
    expect(await (await fetch(`${base}/healthz`)).json()).toMatchObject({ status: 'ok', service: 'collector' });
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(
      /fleetwatch_service_info\{service="collector",site="test-site",location="test-location",version="[^"]+"\} 1/,
    );
    expect(metrics).toContain('process_cpu_seconds_total');
    expect(metrics).not.toContain('nodejs_active_handles_total');
  });

  it('waits for a dependency that comes up, retrying', async () => {
    let calls = 0;
    const dep: BootDependency = {
      variable: 'REDIS_URL',
      describe: 'Redis',
      check: async () => {
        if (++calls < 3) throw new Error('ECONNREFUSED');
      },
    };
    await start({ dependencies: [dep] });
    expect(calls).toBe(3);
  });

  it('exits 1 at once on a permanent failure, naming the variable with secrets masked', async () => {
    const exit = jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`exit ${code}`);
    }) as typeof process.exit);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    let calls = 0;
    const dep: BootDependency = {
      variable: 'DATABASE_URL',
      describe: 'PostgreSQL',
      check: async () => {
        calls++;
        throw new Error('password authentication failed for postgresql://fw:hunter2@db/fw');
      },
      isPermanent: () => true,
    };
    const began = Date.now();
    await expect(start({ dependencies: [dep] })).rejects.toThrow('exit 1');
    expect(Date.now() - began).toBeLessThan(1_500);
    expect(calls).toBe(1);
    expect(exit).toHaveBeenCalledWith(1);
    const written = stderr.mock.calls.map((c) => String(c[0])).join('');
    expect(written).toContain('[collector] cannot start');
    expect(written).toContain('DATABASE_URL: PostgreSQL');
    expect(written).toContain('postgresql://fw:***@db/fw');
    expect(written).not.toContain('hunter2');
  });

  it('exits 1 when a required dependency does not come up within the boot timeout', async () => {
    jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`exit ${code}`);
    }) as typeof process.exit);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const dep: BootDependency = {
      variable: 'AMQP_URL',
      describe: 'RabbitMQ',
      check: () => Promise.reject(new Error('ECONNREFUSED')),
    };
    await expect(
      bootstrapService({ module: ProbeModule, config: config({ bootTimeoutMs: 300 }), dependencies: [dep] }),
    ).rejects.toThrow('exit 1');
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(
      /AMQP_URL: RabbitMQ — ECONNREFUSED \(gave up after \d+ s\)/,
    );
  });

  it('gives up at the boot timeout on a dependency whose check never answers (a blackholed network), naming it', async () => {
    jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`exit ${code}`);
    }) as typeof process.exit);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const dep: BootDependency = {
      variable: 'DATABASE_URL',
      describe: 'PostgreSQL',
      check: () => new Promise<void>(() => undefined),
    };
    const began = Date.now();
    await expect(
      bootstrapService({ module: ProbeModule, config: config({ bootTimeoutMs: 400 }), dependencies: [dep] }),
    ).rejects.toThrow('exit 1');
    expect(Date.now() - began).toBeLessThan(3_000);
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toMatch(
      /DATABASE_URL: PostgreSQL — no answer within \d+ ms \(gave up after \d+ s\)/,
    );
  });

  it('exits 1 naming the port variable when the port is taken, after stopping what had started', async () => {
    const other = await start();
    jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      throw new Error(`exit ${code}`);
    }) as typeof process.exit);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    await expect(bootstrapService({ module: ProbeModule, config: config({ port: portOf(other) }) })).rejects.toThrow(
      'exit 1',
    );
    expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toBe(
      `[collector] cannot start:\n  - COLLECTOR_PORT: port ${portOf(other)} is already in use by another process (stop it, or set COLLECTOR_PORT to a free port)\n`,
    );
    expect(events).toContain('before shutdown');
  });

  it('starts without an optional dependency that is away', async () => {
    const exit = jest.spyOn(process, 'exit');
    const dep: BootDependency = {
      variable: 'AMQP_URL',
      describe: 'RabbitMQ',
      check: () => Promise.reject(new Error('down')),
      isPermanent: () => true,
      required: false,
    };
    const s = await start({ dependencies: [dep] });
    expect(exit).not.toHaveBeenCalled();
    expect((await fetch(`http://127.0.0.1:${portOf(s)}/healthz`)).status).toBe(200);
  });

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    const s = await start({ trustedProxies: ['127.0.0.0/8', '::1/128'] });
    const fastify = s.app.getHttpAdapter().getInstance();
    const ip = async (remoteAddress: string) =>
      (
        await fastify.inject({
          method: 'GET',
          url: '/probe/ip',
          remoteAddress,
          headers: { 'x-forwarded-for': '203.0.113.9' },
        })
      ).json().ip;
    expect(await ip('127.0.0.1')).toBe('203.0.113.9');
    expect(await ip('198.51.100.4')).toBe('198.51.100.4');
  });

  it('on shutdown: marks itself draining first, finishes the request in flight, then stops listening', async () => {
    const s = await start();
    const port = portOf(s);
    const entered = new Promise<void>((resolve) => (slowEntered = resolve));
    const inFlight = fetch(`http://127.0.0.1:${port}/probe/slow`);
    await entered;

    const stopping = s.shutdown('SIGTERM');
    expect(s.shutdown('SIGINT')).toBe(stopping);
    // Draining is visible at once, before Nest tears anything down.
    expect(s.app.get(ReadinessRegistry).isDraining).toBe(true);
    expect((await s.app.get(ReadinessRegistry).evaluate()).ready).toBe(false);

    setTimeout(() => releaseSlow?.(), 100);
    const res = await inFlight;
    expect(res.status).toBe(200);
    // Its keep-alive connection closes with it, so close() is not held open by an idle socket.
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.json()).toEqual({ done: true });
    const began = Date.now();
    await stopping;
    expect(Date.now() - began).toBeLessThan(2_000);

    expect(events).toContain('module destroy (draining: true)');
    expect(events).toContain('slow request answered');
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
    started.splice(started.indexOf(s), 1);
  });

  it('exits 1 when stopping takes longer than the shutdown timeout', async () => {
    const s = await start({ config: config({ shutdownTimeoutMs: 200 }) });
    let release!: () => void;
    hangDestroy = new Promise<void>((resolve) => (release = resolve));
    const exited = exitCalled();
    const stopping = s.shutdown('SIGTERM');
    expect(await exited).toBe(1);
    release();
    await stopping;
    started.splice(started.indexOf(s), 1);
  });

  it('a signal while waiting for its dependencies ends the process at once, cleanly (exit 0)', async () => {
    // The first exit is the signal's (a real process ends there). The boot would go on here: its give-up exit then
    // throws, so that it does not go on to start a service this file would leave listening.
    let resolveExit!: (code: number | undefined) => void;
    const exited = new Promise<number | undefined>((resolve) => (resolveExit = resolve));
    let exits = 0;
    jest.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      if (exits++ === 0) {
        resolveExit(code);
        return undefined as never;
      }
      throw new Error(`exit ${code}`);
    }) as typeof process.exit);
    jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const dep: BootDependency = {
      variable: 'AMQP_URL',
      describe: 'RabbitMQ',
      check: () => Promise.reject(new Error('ECONNREFUSED')),
    };
    const before = process.listenerCount('SIGINT');
    const booting = bootstrapService({
      module: ProbeModule,
      config: config({ bootTimeoutMs: 1_000 }),
      dependencies: [dep],
    }).then(
      () => 'started',
      (e: unknown) => (e as Error).message,
    );
    // Without a handler of its own, Node's default action would kill the process (the launcher: "killed by SIGINT").
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    process.emit('SIGINT', 'SIGINT');
    expect(await exited).toBe(0);
    expect(await booting).toBe('exit 1');
  });

  it('a signal while Nest is starting it is kept: the service stops as soon as it is up', async () => {
    const exited = exitCalled();
    const s = await bootstrapService({
      module: ProbeModule,
      config: config(),
      configure: () => {
        process.emit('SIGTERM', 'SIGTERM');
      },
    });
    expect(s.app.get(ReadinessRegistry).isDraining).toBe(true);
    expect(await exited).toBe(process.exitCode ?? 0);
    await expect(fetch(`${s.url}/healthz`)).rejects.toThrow();
  });

  it('absorbs a signal while stopping: its handler stays, so a second Ctrl-C cannot kill it mid-shutdown', async () => {
    const before = process.listenerCount('SIGINT');
    const s = await start();
    expect(process.listenerCount('SIGINT')).toBe(before + 1);
    let release!: () => void;
    hangDestroy = new Promise<void>((resolve) => (release = resolve));
    const exited = exitCalled();
    try {
      process.emit('SIGINT', 'SIGINT');
      expect(s.app.get(ReadinessRegistry).isDraining).toBe(true);
      // A one-shot handler would be gone now, and the next SIGINT would meet Node's default action (process killed).
      expect(process.listenerCount('SIGINT')).toBe(before + 1);
      process.emit('SIGINT', 'SIGINT');
      process.emit('SIGTERM', 'SIGTERM');
    } finally {
      release();
    }
    expect(await exited).toBe(process.exitCode ?? 0);
    started.splice(started.indexOf(s), 1);
  });

  afterAll(() => register.clear());
});
