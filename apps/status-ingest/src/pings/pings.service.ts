import { Inject, Injectable } from '@nestjs/common';
import { Messages, type PingReceivedPayload } from '@fleetwatch/contracts';
import { InvalidError, NotFoundError } from '@fleetwatch/domain';
import { BusPublisher } from '@fleetwatch/messaging';
import { HeartbeatMonitorsRepository, hashPingToken, PING_TOKEN_PATTERN, type HeartbeatMonitorRecord } from '@fleetwatch/persistence';
import type { IngestConfig } from '../config';
import { PublishGate } from '../ingress/publish-gate.service';
import { IngestMetrics } from '../metrics/ingest.metrics';
import { INGEST_CONFIG } from '../tokens';

export type PingSignal = PingReceivedPayload['signal'];

/** The part of a ping body that travels on (SPEC: up to 10 KB, as text). */
export const MAX_PING_BODY_CHARS = 10_000;
const RUN_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const MAX_CACHED_TOKENS = 10_000;

interface CacheEntry {
  monitor: HeartbeatMonitorRecord | null;
  expiresAt: number;
}

export interface PingAccepted {
  ok: true;
  signal: PingSignal;
}

/**
 * Heartbeat pings (`/ping/{token}`, `/start`, `/fail`): finds the monitor by the
 * hash of its token (cached briefly, unknown tokens too), and publishes
 * `ping.received` with the monitor's schedule so the aggregator can set the
 * deadline without a lookup. Resolves after the broker's confirm.
 */
@Injectable()
export class PingsService {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<HeartbeatMonitorRecord | null>>();
  private readonly ttlMs: number;

  constructor(
    private readonly monitors: HeartbeatMonitorsRepository,
    private readonly publisher: BusPublisher,
    private readonly gate: PublishGate,
    private readonly metrics: IngestMetrics,
    @Inject(INGEST_CONFIG) config: IngestConfig,
  ) {
    this.ttlMs = config.pingCacheMs;
  }

  async ping(token: string, signal: PingSignal, options: { runId?: string; body?: string } = {}, now: number = Date.now()): Promise<PingAccepted> {
    this.gate.assertOpen(now);
    if (options.runId !== undefined && !RUN_ID.test(options.runId)) {
      throw new InvalidError('rid: use 1–128 letters, digits and . _ : -', [{ path: 'rid', message: 'use 1–128 letters, digits and . _ : -' }]);
    }
    const monitor = PING_TOKEN_PATTERN.test(token) ? await this.monitorOf(hashPingToken(token), now) : null;
    if (!monitor) throw new NotFoundError('no heartbeat monitor has this ping URL');
    const payload: PingReceivedPayload = {
      monitorId: monitor.id,
      targetId: monitor.targetId,
      signal,
      receivedAt: new Date(now).toISOString(),
      periodSeconds: monitor.periodSeconds,
      graceSeconds: monitor.graceSeconds,
      maxRuntimeSeconds: monitor.maxRuntimeSeconds,
      name: monitor.name.slice(0, 256),
    };
    if (options.runId !== undefined) payload.runId = options.runId;
    if (options.body) payload.body = options.body.slice(0, MAX_PING_BODY_CHARS);
    await this.gate.publish('ping', () => this.publisher.publish(Messages.PingReceived, payload));
    this.metrics.pings.labels(signal).inc();
    return { ok: true, signal };
  }

  private monitorOf(tokenHash: string, now: number): Promise<HeartbeatMonitorRecord | null> {
    const cached = this.cache.get(tokenHash);
    if (cached && cached.expiresAt > now) return Promise.resolve(cached.monitor);
    const running = this.inFlight.get(tokenHash);
    if (running) return running;
    const promise = this.monitors
      .findByTokenHash(tokenHash)
      .then((monitor) => {
        this.remember(tokenHash, monitor, now);
        return monitor;
      })
      .finally(() => this.inFlight.delete(tokenHash));
    this.inFlight.set(tokenHash, promise);
    return promise;
  }

  private remember(tokenHash: string, monitor: HeartbeatMonitorRecord | null, now: number): void {
    if (this.ttlMs <= 0) return;
    if (this.cache.size >= MAX_CACHED_TOKENS) {
      for (const [k, e] of this.cache) if (e.expiresAt <= now) this.cache.delete(k);
      for (const k of this.cache.keys()) {
        if (this.cache.size < MAX_CACHED_TOKENS) break;
        this.cache.delete(k);
      }
    }
    this.cache.delete(tokenHash);
    this.cache.set(tokenHash, { monitor, expiresAt: now + this.ttlMs });
  }
}
