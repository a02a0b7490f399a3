import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import {
  IngressControlStore,
  LIVE_STATE_REDIS,
  logRedisErrors,
  parseIngressControlRecord,
  type IngressControlRecord,
} from '@fleetwatch/live-state';
import { FLEETWATCH_LOGGER } from '@fleetwatch/observability';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { IngestConfig } from '../config';
import { SharedStateMetrics } from '../limits/shared-state.metrics';
import { INGEST_CONFIG } from '../tokens';
import { IngressStateService } from './ingress-state.service';

/** How often every replica re-reads the ingress record (the safety net under pub/sub). */
export const INGRESS_REFRESH_MS = 1000;

/**
 * How long one delivery of a command waits for Redis (retrying every
 * INGRESS_REFRESH_MS) before it is given back to the queue: well under RabbitMQ's
 * consumer timeout (30 min by default), and the queue's delivery limit (5) times
 * this is the longest outage a command outlives before it is dead-lettered.
 */
export const INGRESS_COMMAND_HOLD_MS = 10 * 60_000;

/**
 * Keeps this replica's IngressStateService equal to the site's ingress record in
 * Redis (libs/live-state IngressControlStore): read once before the service takes
 * traffic (a restarted replica keeps a pause), then on every change announced on
 * the `ingress:control` channel, and re-read every INGRESS_REFRESH_MS in case a
 * notification was missed. Commands are stored here (`apply`) by whichever replica
 * receives them.
 *
 * Redis away: the replica keeps the last state it knew (a pause with `until` still
 * ends on time), counts it, and warns once per outage; it stays ready, since
 * accepting pushes does not need Redis. A command received meanwhile is applied to
 * this replica at once and held (unacked) while the store is retried every
 * INGRESS_REFRESH_MS, so it reaches Redis — and the other replicas — once Redis is
 * back, without spending the queue's few deliveries on an outage of seconds.
 */
@Injectable()
export class IngressStateSync implements OnModuleInit, OnModuleDestroy {
  private readonly store: IngressControlStore;
  private subscriber: Redis | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private degraded = false;
  private stopped = false;
  /** Wakes commands waiting for Redis (at shutdown). */
  private readonly waiting = new Set<() => void>();

  constructor(
    @Inject(LIVE_STATE_REDIS) private readonly redis: Redis,
    private readonly state: IngressStateService,
    private readonly metrics: SharedStateMetrics,
    @Inject(FLEETWATCH_LOGGER) private readonly logger: Logger,
    @Inject(INGEST_CONFIG) private readonly config: IngestConfig,
  ) {
    this.store = new IngressControlStore(redis, { keyPrefix: config.redisPrefix });
  }

  /** Before listening: the state in force (retried within the boot timeout), then the subscription and the timer. */
  async onModuleInit(): Promise<void> {
    const deadline = Date.now() + this.config.bootTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const record = await this.store.read();
        if (record) this.take(record, 'start');
        break;
      } catch (e) {
        if (Date.now() >= deadline)
          throw new Error(
            `status-ingest could not read the ingress state (pause/resume) from Redis: ${(e as Error).message}`,
          );
        await new Promise((r) => setTimeout(r, Math.min(100 * attempt, 1000)));
      }
    }
    this.metrics.redisUp.set(1);
    // SUBSCRIBE only: one left unanswered by a closed connection is sent again on the next (the main connection's
    // commands are not: see createRedis), or the channel would stay unsubscribed.
    const sub = this.redis.duplicate({
      connectionName: `${this.config.service}-ingress-sub`,
      autoResendUnfulfilledCommands: true,
    });
    this.subscriber = sub;
    // Reconnects by itself; outages also show in refresh().
    logRedisErrors(sub, this.logger, `${this.config.service} ingress subscriber`);
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.store.channel) return;
      try {
        this.take(parseIngressControlRecord(message), 'notification');
      } catch (e) {
        this.logger.warn({ error: (e as Error).message }, 'ignored an unreadable ingress notification');
      }
    });
    // Subscribed on every new connection. ioredis subscribes again by itself only to what its last connection had
    // confirmed, and drops a SUBSCRIBE it gave up on (command timeout, maxRetriesPerRequest while Redis refuses
    // connections): a first SUBSCRIBE lost that way left the channel unsubscribed for good (the re-read every
    // INGRESS_REFRESH_MS covered meanwhile). Subscribing to a channel already subscribed changes nothing.
    sub.on('ready', () => void this.subscribe(sub));
    this.timer = setInterval(() => void this.refresh(), INGRESS_REFRESH_MS);
    this.timer.unref();
  }

  private async subscribe(sub: Redis): Promise<void> {
    try {
      await sub.subscribe(this.store.channel);
    } catch (e) {
      // Lost again before the answer: the next connection's 'ready' comes back here.
      if (!this.stopped)
        this.logger.warn(
          { error: (e as Error).message },
          'ingress notifications not subscribed yet; re-reading meanwhile',
        );
    }
  }

  /**
   * Commands waiting for Redis give up (unacked: the broker redelivers them). When the
   * messaging module's destroy hook runs first, it waits for them up to its stop timeout.
   */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    for (const wake of this.waiting) wake();
    if (this.timer) clearInterval(this.timer);
    await this.subscriber?.quit().catch(() => this.subscriber?.disconnect());
  }

  /**
   * Stores a command's record (compare-and-set on its stamp) and takes what is then
   * in force. Redis away: takes the record here at once, then retries the store every
   * INGRESS_REFRESH_MS; throws (so the command is redelivered) only after
   * INGRESS_COMMAND_HOLD_MS or at shutdown.
   */
  async apply(
    record: IngressControlRecord,
    holdMs: number = INGRESS_COMMAND_HOLD_MS,
  ): Promise<{ applied: boolean; current: IngressControlRecord }> {
    const deadline = Date.now() + holdMs;
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.store.apply(record);
        this.recovered();
        this.take(result.current, 'command');
        if (attempt > 1)
          this.logger.info({ commandId: record.commandId, attempts: attempt }, 'ingress command stored in Redis');
        return result;
      } catch (e) {
        const error = (e as Error).message;
        this.take(record, 'command');
        this.unavailable(error);
        if (this.stopped || Date.now() >= deadline)
          throw new Error(
            `ingress command ${record.commandId} not stored in Redis after ${attempt} attempt(s) (applied here only): ${error}`,
          );
        if (attempt === 1)
          this.logger.warn(
            { commandId: record.commandId, error },
            'ingress command applied here only; held until Redis takes it',
          );
        await this.sleep(INGRESS_REFRESH_MS);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waiting.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waiting.add(wake);
    });
  }

  /** Re-reads the record (periodic safety net), and PINGs the subscriber. */
  async refresh(): Promise<void> {
    if (this.stopped) return;
    // A PING on the subscriber's connection, which otherwise only listens: one gone silent without a reset (a flow a
    // NAT forgot) is then noticed by its socket timeout and opened again, and subscribes again on its 'ready'.
    if (this.subscriber?.status === 'ready') this.subscriber.ping().catch(() => undefined);
    if (this.redis.status !== 'ready') return this.unavailable('not connected');
    try {
      const record = await this.store.read();
      this.recovered();
      if (record) this.take(record, 'refresh');
    } catch (e) {
      this.unavailable((e as Error).message);
    }
  }

  private take(record: IngressControlRecord, via: string): void {
    if (!this.state.adopt(record)) return;
    this.metrics.paused.set(record.paused ? 1 : 0);
    const fields = {
      via,
      reason: record.reason,
      operationId: record.operationId ?? null,
      until: record.until,
      commandId: record.commandId,
    };
    if (record.paused) this.logger.warn(fields, 'ingress paused');
    else this.logger.info(fields, 'ingress resumed');
  }

  private unavailable(error: string): void {
    this.metrics.countFallback('ingress');
    if (this.degraded) return;
    this.degraded = true;
    this.metrics.redisUp.set(0);
    this.logger.warn({ error }, 'Redis unavailable: ingress keeps its last known pause state until it is back');
  }

  private recovered(): void {
    if (!this.degraded) return;
    this.degraded = false;
    this.metrics.redisUp.set(1);
    this.logger.info('ingress state is read from Redis again');
  }
}
