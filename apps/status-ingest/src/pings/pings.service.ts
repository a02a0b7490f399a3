import { Inject, Injectable } from '@nestjs/common';
import { Messages, toStorable, truncateText, type PingReceivedPayload } from '@fleetwatch/contracts';
import { InvalidError, NotFoundError, RateLimitedError } from '@fleetwatch/domain';
import { BusPublisher } from '@fleetwatch/messaging';
import { HeartbeatMonitorsRepository, PingTokenResolver } from '@fleetwatch/persistence';
import type { IngestConfig } from '../config';
import { PublishGate } from '../ingress/publish-gate.service';
import { KeyedRateLimiter } from '../limits/rate-limiter';
import { IngestMetrics } from '../metrics/ingest.metrics';
import { INGEST_CONFIG } from '../tokens';

export type PingSignal = PingReceivedPayload['signal'];

/** The part of a ping body that travels on (SPEC: up to 10 KB, as text). */
export const MAX_PING_BODY_CHARS = 10_000;
const RUN_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface PingAccepted {
  ok: true;
  signal: PingSignal;
}

export interface PingOptions {
  runId?: string;
  body?: string;
}

/**
 * Heartbeat pings (`/ping/{token}`, `/start`, `/fail`): finds the monitor of the
 * token (persistence PingTokenResolver: random tokens cost no query; lookups are
 * cached for `pingCacheMs`), and publishes `ping.received` with the monitor's
 * schedule so the aggregator can set the deadline without a lookup. Resolves after
 * the broker's confirm. Rate-limited per client address (`admit`, before the body
 * is read or any token looked up, so a spray of tokens is bounded) and per monitor.
 */
@Injectable()
export class PingsService {
  private readonly resolver: PingTokenResolver;
  private readonly perIp: KeyedRateLimiter;
  private readonly perMonitor: KeyedRateLimiter;

  constructor(
    monitors: HeartbeatMonitorsRepository,
    private readonly publisher: BusPublisher,
    private readonly gate: PublishGate,
    private readonly metrics: IngestMetrics,
    @Inject(INGEST_CONFIG) config: IngestConfig,
  ) {
    this.resolver = new PingTokenResolver(monitors, { cacheTtlMs: config.pingCacheMs });
    const { perIpPerMinute, perTokenPerMinute } = config.pingRateLimit;
    this.perIp = new KeyedRateLimiter(perIpPerMinute / 60, perIpPerMinute);
    this.perMonitor = new KeyedRateLimiter(perTokenPerMinute / 60, perTokenPerMinute);
  }

  /** Charges one ping to the client address (after trusted proxies); throws RateLimitedError over the limit. */
  admit(ip: string, now: number = Date.now()): void {
    // Per address, not per /64: many hosts of one subnet may ping through their own addresses.
    const byIp = this.perIp.take(ip, 1, now);
    if (!byIp.allowed)
      throw new RateLimitedError(
        `rate limit of ${this.perIp.burst} pings/min from this address exceeded`,
        byIp.retryAfterSeconds,
      );
  }

  async ping(
    token: string,
    signal: PingSignal,
    options: PingOptions = {},
    now: number = Date.now(),
  ): Promise<PingAccepted> {
    this.gate.assertOpen(now);
    if (options.runId !== undefined && !RUN_ID.test(options.runId)) {
      throw new InvalidError('rid: use 1–128 letters, digits and . _ : -', [
        { path: 'rid', message: 'use 1–128 letters, digits and . _ : -' },
      ]);
    }
    const monitor = await this.resolver.resolve(token);
    if (!monitor) throw new NotFoundError('no heartbeat monitor has this ping URL');
    const byMonitor = this.perMonitor.take(monitor.id, 1, now);
    if (!byMonitor.allowed)
      throw new RateLimitedError(
        `rate limit of ${this.perMonitor.burst} pings/min for this monitor exceeded`,
        byMonitor.retryAfterSeconds,
      );
    const payload: PingReceivedPayload = {
      monitorId: monitor.id,
      targetId: monitor.targetId,
      signal,
      receivedAt: new Date(now).toISOString(),
      periodSeconds: monitor.periodSeconds,
      graceSeconds: monitor.graceSeconds,
      maxRuntimeSeconds: monitor.maxRuntimeSeconds,
      name: truncateText(monitor.name, 256),
    };
    if (options.runId !== undefined) payload.runId = options.runId;
    // A job's output is kept as information: cleaned of what no store can hold (NUL), never a reason to lose the ping.
    if (options.body) payload.body = truncateText(toStorable(options.body), MAX_PING_BODY_CHARS);
    await this.gate.publish('ping', () => this.publisher.publish(Messages.PingReceived, payload));
    this.metrics.pings.labels(signal).inc();
    return { ok: true, signal };
  }

  /** Drops refilled rate-limit buckets (called periodically by the routes). */
  sweep(now: number = Date.now()): void {
    this.perIp.sweep(now);
    this.perMonitor.sweep(now);
  }
}
