import { Inject, Injectable } from '@nestjs/common';
import { InvalidError, UnavailableError } from '@fleetwatch/domain';
import { BrokerBlockedError, BusError, BusPublisher, InvalidMessageError } from '@fleetwatch/messaging';
import type { IngestConfig } from '../config';
import { IngestMetrics, type PublishKind } from '../metrics/ingest.metrics';
import { INGEST_CONFIG } from '../tokens';
import { IngressStateService } from './ingress-state.service';

/**
 * The one door to the broker for HTTP work: refuses while ingress is paused,
 * the broker is away or blocks publishing (resource alarm), or the service is
 * stopping (503 + Retry-After, at once rather than after a publish timeout), maps bus
 * failures to 503, times publishes, and counts what is in flight so shutdown
 * lets every started publish get its confirm.
 */
@Injectable()
export class PublishGate {
  private inFlight = 0;
  private closing = false;
  private idleWaiters: Array<() => void> = [];
  private readonly retryAfter: number;
  private bodiesInProgress = 0;
  private readonly maxBodiesInProgress: number;
  private readonly bodyLimit: number;

  constructor(
    private readonly ingress: IngressStateService,
    private readonly publisher: BusPublisher,
    private readonly metrics: IngestMetrics,
    @Inject(INGEST_CONFIG) config: IngestConfig,
  ) {
    this.retryAfter = config.retryAfterSeconds;
    this.maxBodiesInProgress = config.maxBodiesInProgressBytes;
    this.bodyLimit = config.bodyLimitBytes;
  }

  /**
   * Admission before a body is read: reserves what it will cost while it is parsed
   * and published (its declared length, else the body limit) and refuses with 503 +
   * Retry-After at once when the bodies in progress already reach
   * INGEST_MAX_BODIES_IN_PROGRESS_BYTES — a parsed batch costs several times its
   * bytes, so concurrent requests, not only queued ones, must be bounded. Released
   * when the response is done or the connection closes.
   */
  admit(declaredLength: string | undefined, response: { once(event: 'close', listener: () => void): unknown }): void {
    const declared = Number(declaredLength ?? Number.NaN);
    const size = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, this.bodyLimit) : this.bodyLimit;
    if (this.bodiesInProgress > 0 && this.bodiesInProgress + size > this.maxBodiesInProgress) {
      throw new UnavailableError(
        `status-ingest is busy with ${this.bodiesInProgress} bytes of requests; nothing was accepted, retry later`,
        this.retryAfter,
      );
    }
    this.bodiesInProgress += size;
    response.once('close', () => (this.bodiesInProgress -= size));
  }

  /** Bytes of request bodies admitted and not yet answered. */
  get bodiesHeld(): number {
    return this.bodiesInProgress;
  }

  /** Throws while paused, stopping or blocked by the broker. Cheap: called first on every request. */
  assertOpen(now: number = Date.now()): void {
    if (this.closing) throw new UnavailableError('status-ingest is shutting down; retry', 1);
    this.ingress.assertOpen(now);
    this.assertNotBlocked();
  }

  private assertNotBlocked(): void {
    const reason = this.publisher.blocked;
    if (reason !== undefined)
      throw new UnavailableError(
        `message broker blocks publishing (resource alarm: ${reason}); nothing was accepted, retry later`,
        this.retryAfter,
      );
  }

  /** Runs a publish (resolving after the broker's confirm), mapping failures to 503. */
  async publish<T>(kind: PublishKind, send: () => Promise<T>): Promise<T> {
    if (this.closing) throw new UnavailableError('status-ingest is shutting down; retry', 1);
    // Fail fast while disconnected instead of holding the client for the publish timeout.
    if (!this.publisher.isConnected())
      throw new UnavailableError('message broker unavailable; nothing was accepted, retry later', this.retryAfter);
    this.assertNotBlocked();
    this.inFlight++;
    const started = performance.now();
    try {
      return await send();
    } catch (e) {
      if (e instanceof InvalidMessageError)
        throw new InvalidError(`refused: ${e.reason}`, [{ path: '(body)', message: e.reason }]);
      if (e instanceof BrokerBlockedError)
        throw new UnavailableError(
          `message broker blocks publishing (resource alarm: ${e.reason}); retry later`,
          this.retryAfter,
        );
      if (e instanceof BusError)
        throw new UnavailableError(
          `message broker did not confirm (${e.name}); nothing was accepted, retry later`,
          this.retryAfter,
        );
      throw e;
    } finally {
      this.metrics.observePublish(kind, (performance.now() - started) / 1000);
      if (--this.inFlight === 0 && this.idleWaiters.length) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  get pending(): number {
    return this.inFlight;
  }

  /** Stops taking work and waits (bounded) until every started publish settled. */
  async drain(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
