import 'reflect-metadata';
import { DynamicModule, Global, INestApplication, Module, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { CommonConfig, SERVICE_PORTS } from '@fleetwatch/config';
import { ApiErrorCode, CidrSet, type ApiErrorBody } from '@fleetwatch/contracts';
import { STATUS_CODES } from 'node:http';
import type { ServerOptions as HttpsServerOptions } from 'node:https';
import type { Duplex } from 'node:stream';
import { collectDefaultMetrics, Gauge, register } from 'prom-client';
import type { Logger } from 'pino';
import { createLogger, FLEETWATCH_LOGGER, maskSecrets, PinoNestLogger } from './logger';
import { HealthController, ReadinessRegistry, SERVICE_IDENTITY, ServiceIdentity } from './health';
import { ApiErrorFilter, mapError } from './error.filter';
import { dropLintFailingDefaultMetrics } from './promtool-lint';
import { answerAfterUnreadBody, type UnreadBodyLimits } from './unread-body';
import { installLeanAsyncResourceBind } from './async-resource-bind';

const DEFAULT_UNREAD_BODY: UnreadBodyLimits = { maxBytes: 32 * 1024 * 1024, maxMs: 10_000 };

const VERSION = process.env.FLEETWATCH_VERSION ?? '0.1.0';

/**
 * A dependency checked before the service starts taking work. A permanent
 * failure (bad credentials, missing database) or no answer within the boot
 * timeout exits non-zero with a message naming the variable.
 */
export interface BootDependency {
  /** The environment variable that configures it (`DATABASE_URL`). */
  variable: string;
  /** Human label (`PostgreSQL at postgresql://…`), secrets masked. */
  describe: string;
  check: () => Promise<void>;
  /** Errors that retrying cannot fix. */
  isPermanent?: (error: unknown) => boolean;
  /** false: log and go on (the collector keeps working without the bus). */
  required?: boolean;
}

export interface BootstrapOptions {
  module: Type | DynamicModule;
  config: CommonConfig;
  dependencies?: BootDependency[];
  bodyLimitBytes?: number;
  /**
   * Longest path parameter the router takes (find-my-way's default: 100, longer → 414). The gateway raises it:
   * ids travel URL-encoded in its paths (a 256-character host or instance id of astral characters is ~1.5 KB
   * encoded). Ingest keeps the default: no ping token is that long, and a longer one is refused early.
   */
  maxParamLength?: number;
  /** Extra wiring before listen (Swagger, static files, CORS, …). */
  configure?: (app: NestFastifyApplication, logger: Logger) => Promise<void> | void;
  /**
   * Proxies (CIDRs) in front whose X-Forwarded-For is believed: the client address
   * is the right-most one in the header that is not a trusted proxy, walking from
   * the socket peer. Empty: the socket peer, whatever the header says.
   */
  trustedProxies?: readonly string[];
  /** Serve HTTPS with these options (status-ingest's optional mutual TLS). */
  https?: HttpsServerOptions;
  /**
   * An answer sent before the body was read (413, 401) waits while the rest is read
   * and dropped, up to these bounds, so the client receives it (default 32 MiB, 10 s).
   */
  unreadBody?: UnreadBodyLimits;
}

/** Fastify's `trustProxy` for a list of proxy CIDRs (one rule: contracts' CidrSet). */
export function trustProxyFunction(
  proxies: readonly string[] | undefined,
): false | ((address: string, hop: number) => boolean) {
  if (!proxies?.length) return false;
  const trusted = new CidrSet(proxies);
  return (address) => trusted.contains(address);
}

@Global()
@Module({})
class ObservabilityModule {
  static forRoot(identity: ServiceIdentity, logger: Logger): DynamicModule {
    return {
      module: ObservabilityModule,
      controllers: [HealthController],
      providers: [
        ReadinessRegistry,
        { provide: SERVICE_IDENTITY, useValue: identity },
        { provide: FLEETWATCH_LOGGER, useValue: logger },
      ],
      exports: [ReadinessRegistry, SERVICE_IDENTITY, FLEETWATCH_LOGGER],
    };
  }
}

let metricsStarted = false;
function startProcessMetrics(identity: ServiceIdentity): void {
  if (metricsStarted) return;
  metricsStarted = true;
  collectDefaultMetrics();
  dropLintFailingDefaultMetrics();
  new Gauge({
    name: 'fleetwatch_service_info',
    help: 'Service identity (always 1).',
    labelNames: ['service', 'site', 'location', 'version'],
  })
    .labels(identity.service, identity.site, identity.location, identity.version)
    .set(1);
}

/**
 * The longest one attempt of a boot check may take: a dependency behind a network that drops packets (no refusal)
 * never answers a connect or a query, and without a bound the service waited for ever, silent, past its boot timeout.
 */
const CHECK_ATTEMPT_MS = 10_000;

/** `check`'s outcome, or a rejection once `ms` passed without one (the check itself is left to end on its own). */
function answerWithin(check: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  check.catch(() => undefined); // a check that fails after its time is up is not an unhandled rejection
  return Promise.race([check, late]).finally(() => clearTimeout(timer));
}

async function waitForDependencies(deps: BootDependency[], timeoutMs: number, logger: Logger): Promise<string[]> {
  const problems: string[] = [];
  await Promise.all(
    deps.map(async (dep) => {
      const deadline = Date.now() + timeoutMs;
      let attempt = 0;
      for (;;) {
        attempt++;
        try {
          await answerWithin(dep.check(), Math.max(1, Math.min(CHECK_ATTEMPT_MS, deadline - Date.now())));
          if (attempt > 1) logger.info({ variable: dep.variable }, `${dep.describe} is reachable`);
          return;
        } catch (e) {
          const message = maskSecrets((e as Error).message ?? String(e));
          const permanent = dep.isPermanent?.(e) ?? false;
          if (permanent || Date.now() >= deadline) {
            const problem = `${dep.variable}: ${dep.describe} — ${message}${permanent ? '' : ` (gave up after ${Math.round(timeoutMs / 1000)} s)`}`;
            if (dep.required === false) {
              logger.warn({ variable: dep.variable }, `${problem}; starting without it and retrying in the background`);
              return;
            }
            problems.push(problem);
            return;
          }
          if (attempt === 1 || attempt % 5 === 0)
            logger.warn({ variable: dep.variable, attempt }, `waiting for ${dep.describe}: ${message}`);
          await new Promise((r) => setTimeout(r, Math.min(2000, 200 * attempt)));
        }
      }
    }),
  );
  return problems;
}

type FastifyServerOptions = Extract<
  NonNullable<ConstructorParameters<typeof FastifyAdapter>[0]>,
  { frameworkErrors?: unknown }
>;

/** Errors Fastify raises before routing (malformed URL, over-long path parameter) get the same JSON shape. */
const frameworkErrors: NonNullable<FastifyServerOptions['frameworkErrors']> = (error, _req, reply) => {
  const mapped = mapError(error);
  // Written on the raw response: the typed reply's generics cannot be satisfied outside a route.
  reply.raw.writeHead(mapped.status, { 'content-type': 'application/json; charset=utf-8', ...(mapped.headers ?? {}) });
  reply.raw.end(JSON.stringify(mapped.body));
};

/**
 * A request Node's HTTP parser refuses (a method HTTP does not have, a bad Content-Length, headers over the limit)
 * never reaches Fastify's routing: its answer is written on the socket. Fastify's own wrote
 * `{"error":"Bad Request","message":"Client Error"}` — not the ApiErrorBody every other answer is (`error` a string,
 * no code), and naming nothing. Same statuses as Fastify's (408, 431, else 400); the connection is closed.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message]: [number, string, string] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'the HTTP request did not arrive whole in time']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, ApiErrorCode.ValidationFailed, 'the HTTP request headers are larger than allowed']
        : [400, ApiErrorCode.ValidationFailed, `malformed HTTP request (${err.code ?? 'parse error'})`];
  const body = JSON.stringify({
    error: { code, message, issues: [{ path: '(request)', message }] },
  } satisfies ApiErrorBody);
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  socket.destroy(err);
}

/** Why the service's port could not be opened, naming its variable (`COLLECTOR_PORT: port 3002 is already in use …`). */
export function listenProblem(config: Pick<CommonConfig, 'service' | 'port'>, error: unknown): string {
  const variable = SERVICE_PORTS[config.service]?.variable ?? 'port';
  const code = (error as { code?: string } | null)?.code;
  if (code === 'EADDRINUSE')
    return `${variable}: port ${config.port} is already in use by another process (stop it, or set ${variable} to a free port)`;
  if (code === 'EACCES')
    return `${variable}: port ${config.port} may not be opened by this user (below 1024 needs privileges: set ${variable} to 1024 or above)`;
  return `${variable}: cannot listen on port ${config.port}: ${maskSecrets((error as Error)?.message ?? String(error))}`;
}

export interface RunningService {
  app: INestApplication;
  logger: Logger;
  url: string;
  shutdown: (signal: string) => Promise<void>;
}

/** The one service bootstrap: logs, config, dependency checks, health, metrics, graceful shutdown. */
export async function bootstrapService(options: BootstrapOptions): Promise<RunningService> {
  const { config } = options;
  // Before Fastify serves a request: its body parser binds an AsyncResource per request (see the module).
  installLeanAsyncResourceBind();
  const logger = createLogger(config.service, config.logLevel);
  const identity: ServiceIdentity = {
    service: config.service,
    site: config.site,
    location: config.location,
    version: VERSION,
    startedAt: new Date(),
  };

  // A signal while starting: before the application exists nothing is in flight, so the process ends at once (exit 0);
  // once Nest is creating it (consumers may start before the port opens), the signal is kept and the shutdown below
  // runs as soon as the service is up. Without these, Node's default action killed a service stopped while booting.
  let creating = false;
  let signalledEarly: NodeJS.Signals | undefined;
  const onEarlySignal = (signal: NodeJS.Signals) => {
    if (creating) {
      signalledEarly ??= signal;
      return;
    }
    logger.info({ signal }, `${config.service} stopped while starting`);
    logger.flush?.();
    setTimeout(() => process.exit(0), 20).unref();
  };
  process.on('SIGINT', onEarlySignal);
  process.on('SIGTERM', onEarlySignal);

  const problems = await waitForDependencies(options.dependencies ?? [], config.bootTimeoutMs, logger);
  if (problems.length) {
    for (const p of problems) logger.fatal(p);
    process.stderr.write(`[${config.service}] cannot start:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    await new Promise((r) => setTimeout(r, 50));
    process.exit(1);
  }

  creating = true;
  startProcessMetrics(identity);
  class RootModule {}
  Module({ imports: [ObservabilityModule.forRoot(identity, logger), options.module] })(RootModule);
  const adapter = new FastifyAdapter({
    bodyLimit: options.bodyLimitBytes ?? 1024 * 1024,
    trustProxy: trustProxyFunction(options.trustedProxies),
    ...(options.https ? { https: options.https } : {}),
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: options.maxParamLength ?? 100 },
    return503OnClosing: true,
    frameworkErrors,
    clientErrorHandler,
    // No service uses Nest middleware (app.use / MiddlewareConsumer): without middie, no request runs its onRequest
    // hook (~3 % of status-ingest's wall-clock profile under single-update POSTs, issue 14). Adding middleware later
    // means dropping this option: app.use then fails at start instead of doing nothing.
    skipMiddie: true,
  });
  const app = await NestFactory.create<NestFastifyApplication>(RootModule, adapter, {
    logger: new PinoNestLogger(logger),
    abortOnError: false,
  });
  app.useGlobalFilters(new ApiErrorFilter());
  const readiness = app.get(ReadinessRegistry);
  // A response sent while draining closes its keep-alive connection: otherwise a request in
  // flight at shutdown leaves an idle socket that holds close() open until the hard timeout.
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onSend', async (_request, reply) => {
      if (readiness.isDraining) void reply.header('connection', 'close');
    });
  answerAfterUnreadBody(app.getHttpAdapter().getInstance(), options.unreadBody ?? DEFAULT_UNREAD_BODY);
  // Errors raised by Fastify itself while parsing (body limit, bad JSON, content type) reach
  // Nest's Fastify error handler, which hands them to ApiErrorFilter: one JSON shape for all.
  await options.configure?.(app, logger);

  try {
    await app.listen(config.port, '0.0.0.0');
  } catch (e) {
    // A port taken by another process (a second `npm start`, a leftover service) or one this user may not open: a
    // message naming the variable, not Node's stack trace of an unhandled rejection.
    const problem = listenProblem(config, e);
    logger.fatal(problem);
    process.stderr.write(`[${config.service}] cannot start:\n  - ${problem}\n`);
    // What started before the port opened (consumers, timers) stops first: nothing it took is left half done.
    await Promise.race([
      app.close().catch(() => undefined),
      // Not unref'd: a close waiting on nothing that holds the loop would let the process end with code 0.
      new Promise((r) => setTimeout(r, config.shutdownTimeoutMs)),
    ]);
    process.exit(1);
  }
  const url = `${options.https ? 'https' : 'http'}://127.0.0.1:${config.port}`;
  logger.info(
    { port: config.port, site: config.site, location: config.location, role: config.role },
    `${config.service} listening on ${url}`,
  );

  let stopping: Promise<void> | null = null;
  let stopped = false;
  const shutdown = (signal: string): Promise<void> => {
    if (stopping) return stopping;
    stopping = (async () => {
      logger.info({ signal }, `${config.service} stopping: no new work, finishing in-flight`);
      readiness.markDraining();
      const hard = setTimeout(() => {
        logger.error(`${config.service} did not stop within ${config.shutdownTimeoutMs} ms; exiting`);
        process.exit(1);
      }, config.shutdownTimeoutMs);
      hard.unref();
      try {
        await app.close();
        logger.info(`${config.service} stopped`);
      } catch (e) {
        logger.error({ err: e }, 'error while stopping');
        process.exitCode = 1;
      } finally {
        clearTimeout(hard);
        stopped = true;
      }
    })();
    return stopping;
  };
  // Every SIGINT/SIGTERM is handled, not only the first: a Ctrl-C on `npm start` reaches each service twice (from the
  // terminal, to the whole process group, and from the launcher, which forwards it for a launcher signalled alone),
  // and with a one-shot listener the second one, arriving mid-shutdown, met Node's default action and killed the
  // service with its in-flight work half done. A signal during shutdown changes nothing: the shutdown's own deadline
  // (SHUTDOWN_TIMEOUT_MS) bounds it, and SIGKILL stops it at once.
  const stopOnSignal = (signal: NodeJS.Signals) => {
    if (stopped) {
      // Stopped already (by code, e.g. a test's shutdown()): the signal ends the process.
      process.exit(process.exitCode ?? 0);
      return;
    }
    if (stopping) {
      logger.debug({ signal }, `${config.service} already stopping; ${signal} changes nothing (SIGKILL stops at once)`);
      return;
    }
    void shutdown(signal).then(() => {
      logger.flush?.();
      setTimeout(() => process.exit(process.exitCode ?? 0), 20).unref();
    });
  };
  process.removeListener('SIGINT', onEarlySignal);
  process.removeListener('SIGTERM', onEarlySignal);
  process.on('SIGINT', stopOnSignal);
  process.on('SIGTERM', stopOnSignal);
  if (signalledEarly) stopOnSignal(signalledEarly);
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));
  return { app, logger, url, shutdown };
}

/** Re-exported so apps import Prometheus types from one place. */
export { register as metricsRegistry };
