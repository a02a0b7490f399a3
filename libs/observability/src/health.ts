import { Controller, Get, Header, HttpCode, Inject, Injectable, Optional, Res, SetMetadata } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { register } from 'prom-client';
import { FLEETWATCH_LOGGER, maskSecrets } from './logger';

export interface ReadinessCheck {
  /** Short name shown in /readyz (`database`, `redis`, `bus`). */
  name: string;
  /**
   * Resolves when the dependency is usable; rejects (or times out) otherwise. The rejection's text is logged, never
   * shown by /readyz: give it a `readinessReason` (readinessFailure) to say which category /readyz shows.
   */
  check: () => Promise<void> | void;
}

/**
 * What /readyz says of a failing check: a fixed word, never the error's own text — /readyz answers anyone, and an
 * error names hosts, databases, relations, even a URL with its password. The full error goes to the log.
 * `unreachable`: no connection (refused, closed, name not resolved); `timeout`: no answer in time; `blocked`: the
 * broker refuses publishes (resource alarm); `pending`: not set up yet (a collector without an assignment);
 * `draining`: the service is stopping; `unavailable`: anything else.
 */
export const READINESS_REASONS = ['unreachable', 'timeout', 'blocked', 'pending', 'draining', 'unavailable'] as const;
export type ReadinessReason = (typeof READINESS_REASONS)[number];

/** An error for a ReadinessCheck to throw: `message` is logged, `reason` is what /readyz shows. */
export function readinessFailure(
  reason: ReadinessReason,
  message: string,
): Error & { readinessReason: ReadinessReason } {
  return Object.assign(new Error(message), { readinessReason: reason });
}

/** Socket error codes of a dependency that cannot be reached (Node's, on the error or its cause). */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);

/**
 * The category /readyz shows for a check's failure: its own `readinessReason` (any object may carry one, so libs that
 * do not import this one can tag their errors), else one read from a socket error code, else `unavailable`.
 */
export function readinessReasonOf(error: unknown): ReadinessReason {
  for (let e = error, depth = 0; e !== null && typeof e === 'object' && depth < 4; depth++) {
    const { readinessReason, code } = e as { readinessReason?: unknown; code?: unknown };
    if ((READINESS_REASONS as readonly unknown[]).includes(readinessReason)) return readinessReason as ReadinessReason;
    if (code === 'ETIMEDOUT') return 'timeout';
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return 'unreachable';
    e = (e as { cause?: unknown }).cause;
  }
  return 'unavailable';
}

export interface CheckOutcome {
  name: string;
  ok: boolean;
  /** A failing check's category (ReadinessReason): never the error's text, which is logged instead. */
  error?: ReadinessReason;
  ms: number;
}

/** Where the registry writes failing checks' errors (the service's pino logger). */
export type ReadinessLogger = Pick<Logger, 'warn' | 'info'>;

/** A check's log state: at most one line about its failure per READINESS_LOG_INTERVAL_MS. */
interface CheckLog {
  lastAt: number;
  /** Failed probes not logged since the last line. */
  unlogged: number;
  /** A failure was logged and the check has not answered since: its recovery is logged. */
  outage: boolean;
}

/** At most one line per failing check this often: a probe every second must not write a line every second. */
export const READINESS_LOG_INTERVAL_MS = 60_000;

/**
 * What /readyz asks. Apps register their real dependencies at wiring time;
 * shutdown flips `draining` so load balancers stop sending work first.
 */
@Injectable()
export class ReadinessRegistry {
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly logs = new Map<string, CheckLog>();
  private draining = false;

  constructor(@Optional() @Inject(FLEETWATCH_LOGGER) private readonly logger?: ReadinessLogger) {}

  register(check: ReadinessCheck): void {
    this.checks.set(check.name, check);
  }

  markDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  async evaluate(timeoutMs = 2000): Promise<{ ready: boolean; checks: CheckOutcome[] }> {
    const outcomes = await Promise.all(
      [...this.checks.values()].map(async (c): Promise<CheckOutcome> => {
        const started = Date.now();
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(() => c.check()),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(readinessFailure('timeout', `no answer within ${timeoutMs} ms`)),
                timeoutMs,
              );
            }),
          ]);
          this.logRecovery(c.name);
          return { name: c.name, ok: true, ms: Date.now() - started };
        } catch (e) {
          const reason = readinessReasonOf(e);
          this.logFailure(c.name, reason, e);
          return { name: c.name, ok: false, error: reason, ms: Date.now() - started };
        } finally {
          if (timer) clearTimeout(timer);
        }
      }),
    );
    if (this.draining) outcomes.push({ name: 'shutdown', ok: false, error: 'draining', ms: 0 });
    return { ready: outcomes.every((o) => o.ok), checks: outcomes };
  }

  /** The failure's full text to the log, at most once per READINESS_LOG_INTERVAL_MS per check. */
  private logFailure(name: string, reason: ReadinessReason, error: unknown): void {
    const now = Date.now();
    const log = this.logs.get(name) ?? { lastAt: Number.NEGATIVE_INFINITY, unlogged: 0, outage: false };
    this.logs.set(name, log);
    if (now - log.lastAt < READINESS_LOG_INTERVAL_MS) {
      log.unlogged++;
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    this.logger?.warn(
      { check: name, reason, error: maskSecrets(message), unloggedFailures: log.unlogged },
      `readiness check ${name} fails (${reason}): ${maskSecrets(message)}`,
    );
    log.lastAt = now;
    log.unlogged = 0;
    log.outage = true;
  }

  private logRecovery(name: string): void {
    const log = this.logs.get(name);
    if (!log?.outage) return;
    log.outage = false;
    this.logger?.info({ check: name, unloggedFailures: log.unlogged }, `readiness check ${name} passes again`);
  }
}

export const SERVICE_IDENTITY = Symbol('SERVICE_IDENTITY');
export interface ServiceIdentity {
  service: string;
  site: string;
  location: string;
  version: string;
  startedAt: Date;
}

/**
 * What `@ApiExcludeController()` of @nestjs/swagger records (health.spec.ts checks it still
 * is), set without importing @nestjs/swagger: that import alone costs every service ~4 MB
 * of RSS (lodash, js-yaml, …) while only the gateway serves OpenAPI.
 */
export const EXCLUDE_FROM_OPENAPI = SetMetadata('swagger/apiExcludeController', [true]);

@EXCLUDE_FROM_OPENAPI
@Controller()
export class HealthController {
  constructor(
    private readonly readiness: ReadinessRegistry,
    @Inject(SERVICE_IDENTITY) private readonly identity: ServiceIdentity,
  ) {}

  /** Liveness: the process and its event loop answer. No dependency checks here. */
  @Get('healthz')
  @HttpCode(200)
  healthz() {
    return { status: 'ok', service: this.identity.service, uptimeSeconds: Math.round(process.uptime()) };
  }

  @Get('readyz')
  async readyz(@Res() reply: FastifyReply) {
    const { ready, checks } = await this.readiness.evaluate();
    await reply
      .status(ready ? 200 : 503)
      .header('cache-control', 'no-store')
      .send({ status: ready ? 'ready' : 'not_ready', service: this.identity.service, checks });
  }

  @Get('metrics')
  @Header('content-type', register.contentType)
  async metrics(): Promise<string> {
    return register.metrics();
  }
}
