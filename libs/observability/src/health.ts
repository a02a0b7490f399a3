import { Controller, Get, Header, HttpCode, Inject, Injectable, Res, SetMetadata } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { register } from 'prom-client';

export interface ReadinessCheck {
  /** Short name shown in /readyz (`database`, `redis`, `bus`). */
  name: string;
  /** Resolves when the dependency is usable; rejects (or times out) otherwise. */
  check: () => Promise<void> | void;
}

export interface CheckOutcome {
  name: string;
  ok: boolean;
  error?: string;
  ms: number;
}

/**
 * What /readyz asks. Apps register their real dependencies at wiring time;
 * shutdown flips `draining` so load balancers stop sending work first.
 */
@Injectable()
export class ReadinessRegistry {
  private readonly checks = new Map<string, ReadinessCheck>();
  private draining = false;

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
              timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
            }),
          ]);
          return { name: c.name, ok: true, ms: Date.now() - started };
        } catch (e) {
          return { name: c.name, ok: false, error: (e as Error).message, ms: Date.now() - started };
        } finally {
          if (timer) clearTimeout(timer);
        }
      }),
    );
    if (this.draining) outcomes.push({ name: 'shutdown', ok: false, error: 'draining', ms: 0 });
    return { ready: outcomes.every((o) => o.ok), checks: outcomes };
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
