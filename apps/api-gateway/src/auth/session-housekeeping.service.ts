import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import { SessionsRepository } from '@fleetwatch/persistence';

const EVERY_MS = 60 * 60_000;
/** Expired sessions are kept this long after expiry (a 401 can still say "expired"), then deleted. */
const KEEP_EXPIRED_MS = 24 * 60 * 60_000;

/**
 * Deletes long-expired sessions hourly (batched deletes in the repository). Idempotent,
 * so gateway replicas may all run it.
 */
@Injectable()
export class SessionHousekeeping implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly sessions: SessionsRepository,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.sweep(), EVERY_MS);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
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
