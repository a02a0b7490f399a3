import { Injectable } from '@nestjs/common';
import { Counter, Gauge, Histogram, register, type Metric } from 'prom-client';

/** Why a request was refused: bounded values, never key ids or secrets. */
export type RefusalReason =
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'rate_limited'
  | 'paused'
  | 'unavailable'
  | 'timeout'
  | 'other';

export type PublishKind = 'single' | 'batch' | 'ping';

const STATUS_REASON: Record<number, RefusalReason> = {
  400: 'invalid',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  408: 'timeout',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  422: 'invalid',
  429: 'rate_limited',
  503: 'unavailable',
};

/** Name of the gauge of API keys whose last use the broker did not confirm at the last flush (ApiKeyUseReporter). */
export const API_KEY_USES_UNREPORTED = 'fleetwatch_ingest_api_key_uses_unreported';

export function refusalReasonOf(status: number): RefusalReason {
  return STATUS_REASON[status] ?? 'other';
}

// Reused when already registered: tests boot the service several times in one process.
function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

/** status-ingest's own series (bus counters come from libs/messaging). */
@Injectable()
export class IngestMetrics {
  readonly accepted = lookup(
    'fleetwatch_ingest_updates_accepted_total',
    () =>
      new Counter({
        name: 'fleetwatch_ingest_updates_accepted_total',
        help: 'Status updates confirmed by the broker and answered 202.',
        labelNames: ['mode'],
      }),
  );
  readonly refused = lookup(
    'fleetwatch_ingest_requests_refused_total',
    () =>
      new Counter({
        name: 'fleetwatch_ingest_requests_refused_total',
        help: 'Ingest requests (updates and pings) answered 4xx/5xx, by reason.',
        labelNames: ['route', 'reason'],
      }),
  );
  readonly pings = lookup(
    'fleetwatch_ingest_pings_accepted_total',
    () =>
      new Counter({
        name: 'fleetwatch_ingest_pings_accepted_total',
        help: 'Heartbeat pings confirmed by the broker, by signal.',
        labelNames: ['signal'],
      }),
  );
  readonly publishSeconds = lookup(
    'fleetwatch_ingest_publish_duration_seconds',
    () =>
      new Histogram({
        name: 'fleetwatch_ingest_publish_duration_seconds',
        help: 'Time from handing updates to the publisher until the broker confirmed them (or the publish failed).',
        labelNames: ['kind'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      }),
  );
  /** Set by ApiKeyUseReporter after each flush. */
  readonly apiKeyUsesUnreported = lookup(
    API_KEY_USES_UNREPORTED,
    () =>
      new Gauge({
        name: API_KEY_USES_UNREPORTED,
        help: 'API keys whose newest use the broker did not confirm at the last flush (kept for the next one); 0 when all were.',
      }),
  );

  private readonly acceptedSingle = this.accepted.labels('single');
  private readonly acceptedBatch = this.accepted.labels('batch');
  private readonly publishChildren = {
    single: this.publishSeconds.labels('single'),
    batch: this.publishSeconds.labels('batch'),
    ping: this.publishSeconds.labels('ping'),
  };

  countAccepted(n: number, batch: boolean): void {
    (batch ? this.acceptedBatch : this.acceptedSingle).inc(n);
  }

  countRefused(route: 'updates' | 'ping', status: number): void {
    this.refused.labels(route, refusalReasonOf(status)).inc();
  }

  observePublish(kind: PublishKind, seconds: number): void {
    this.publishChildren[kind].observe(seconds);
  }
}
