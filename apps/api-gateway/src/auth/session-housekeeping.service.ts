import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { SessionsRepository } from '@fleetwatch/persistence';

export const SESSION_SWEEP_EVERY_MS = 60 * 60_000;
/**
 * The first sweep, this long after boot: a first sweep an hour after boot never came on a gateway restarted more often
 * than hourly (a deploy loop, a crash loop, autoscaling), and expired sessions piled up.
 */
export const SESSION_SWEEP_FIRST_MS = 60_000;
/** Expired sessions are kept this long after expiry (a 401 can still say "expired"), then deleted. */
const KEEP_EXPIRED_MS = 24 * 60 * 60_000;

/**
 * Deletes long-expired sessions a minute after boot, then hourly (batched deletes in the repository). Idempotent,
 * so gateway replicas may all run it.
 */
@Injectable()
export class SessionHousekeeping implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly sessions: SessionsRepository,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  private stopped = false;

  onApplicationBootstrap(): void {
    this.schedule(SESSION_SWEEP_FIRST_MS);
  }

  onModuleDestroy(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.sweep().finally(() => this.schedule(SESSION_SWEEP_EVERY_MS));
    }, delayMs);
    this.timer.unref();
  }

  /** Returns the number of sessions deleted; never throws (the next run retries). */
  async sweep(now = Date.now()): Promise<number> {
    try {
      const deleted = await this.sessions.deleteExpired(new Date(now - KEEP_EXPIRED_MS));
      if (deleted > 0) this.logger.info({ deleted }, 'deleted expired sessions');
      return deleted;
    } catch (err) {
      this.logger.warn({ err }, 'could not delete expired sessions; retrying next hour');
      return 0;
    }
  }
}
