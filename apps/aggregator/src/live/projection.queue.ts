import { BeforeApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import { UnavailableError } from '@fleetwatch/domain';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Logger } from 'pino';
import { retryTransient } from '../status/outage-retry';

/** Projections allowed to wait before a new batch waits for them (bounds memory when Redis is slow). */
const MAX_PENDING = 2;

/**
 * Redis projections of committed state, run one at a time in commit order while
 * the next batch commits (Postgres and Redis work overlap). A projection waits
 * out Redis outages; one that still fails asks for a reconcile from Postgres
 * (`onFailure`), and a crash before it ran is repaired by the boot reconcile.
 */
@Injectable()
export class ProjectionQueue implements BeforeApplicationShutdown {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;
  private stopping = false;
  private readonly waiters: Array<() => void> = [];
  /** A projection is waiting out a Redis outage (its last try failed; it has not succeeded since). */
  private outage = false;
  private readonly outageWatchers = new Set<() => void>();
  onFailure: () => void = () => undefined;

  constructor(@Inject(FLEETWATCH_LOGGER) private readonly logger: Logger) {}

  enqueue(job: () => Promise<void>): void {
    this.pending++;
    this.tail = this.tail
      .then(() =>
        retryTransient(job, {
          stopping: () => this.stopping,
          onRetry: (e, attempt, delayMs) => {
            this.logger.warn(
              { err: (e as Error).message, attempt, delayMs },
              'live state projection failed: Redis unavailable, retrying',
            );
            this.enterOutage();
          },
        }),
      )
      .then(() => {
        this.outage = false;
      })
      .catch((e: unknown) => {
        this.outage = false;
        this.logger.error({ err: (e as Error).message }, 'live state projection failed; reconciling from Postgres');
        this.onFailure();
      })
      .finally(() => {
        this.pending--;
        if (this.pending < MAX_PENDING) for (const w of this.waiters.splice(0)) w();
      });
  }

  /** Resolves when fewer than MAX_PENDING projections wait (backpressure for the consumer). */
  async roomAvailable(): Promise<void> {
    if (this.pending < MAX_PENDING) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /** Resolves once every projection enqueued so far has run (however long a Redis outage holds them). */
  drain(): Promise<void> {
    return this.tail;
  }

  /**
   * As drain(), but rejects (UnavailableError) as soon as a projection is waiting out a Redis outage, or at once if
   * one already is. For work that holds a lane while it waits: a lane held until Redis returns would hold the
   * sweeper's expiry of that lane's deadlines (which goes on from Postgres) behind it.
   */
  drainUnlessOutage(): Promise<void> {
    if (this.outage) return Promise.reject(outageError());
    return new Promise<void>((resolve, reject) => {
      const onOutage = () => {
        this.outageWatchers.delete(onOutage);
        reject(outageError());
      };
      this.outageWatchers.add(onOutage);
      void this.tail.then(() => {
        this.outageWatchers.delete(onOutage);
        resolve();
      });
    });
  }

  private enterOutage(): void {
    this.outage = true;
    for (const w of [...this.outageWatchers]) w();
  }

  /** After every consumer and timer stopped (onModuleDestroy), before Redis closes (onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    const timer = setTimeout(() => (this.stopping = true), 3000);
    await this.tail;
    clearTimeout(timer);
  }
}

function outageError(): UnavailableError {
  return new UnavailableError('a live state projection is waiting for Redis to return', 5);
}
