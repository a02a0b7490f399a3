import { Injectable } from '@nestjs/common';
import { Counter, Gauge, register, type Metric } from 'prom-client';

/** What of ingest's shared (Redis) state an outage touched. */
export type SharedStatePart = 'rate_limit' | 'ingress';

// Reused when already registered: tests boot the service several times in one process.
function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

/** Series of ingest's state shared by replicas in Redis: rate-limit buckets and the ingress pause. */
@Injectable()
export class SharedStateMetrics {
  readonly fallbacks = lookup(
    'fleetwatch_ingest_shared_state_fallback_total',
    () =>
      new Counter({
        name: 'fleetwatch_ingest_shared_state_fallback_total',
        help: 'Decisions taken without Redis: rate limits from this replica`s own buckets, ingress from its last known state.',
        labelNames: ['part'],
      }),
  );
  readonly redisUp = lookup(
    'fleetwatch_ingest_shared_state_up',
    () =>
      new Gauge({
        name: 'fleetwatch_ingest_shared_state_up',
        help: '1 while the last call to Redis for shared ingest state succeeded, else 0.',
      }),
  );
  readonly paused = lookup(
    'fleetwatch_ingest_ingress_paused',
    () =>
      new Gauge({
        name: 'fleetwatch_ingest_ingress_paused',
        help: '1 while this replica refuses pushes because ingress is paused (as last read from Redis), else 0.',
      }),
  );

  private readonly fallbackChildren = {
    rate_limit: this.fallbacks.labels('rate_limit'),
    ingress: this.fallbacks.labels('ingress'),
  };

  countFallback(part: SharedStatePart): void {
    this.fallbackChildren[part].inc();
  }
}
