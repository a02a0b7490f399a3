import { Counter, Histogram, register, type Metric } from 'prom-client';

// Prometheus metrics of notification delivery on the aggregator's /metrics. Labels are bounded: channel
// type (five, or `unknown` when the channel could not be read) and outcome (four) — never a channel id.

function lookup<M extends Metric<string>>(name: string, create: () => M): M {
  return (register.getSingleMetric(name) as M | undefined) ?? create();
}

export class DeliveryMetrics {
  readonly attempts = lookup(
    'fleetwatch_alert_delivery_attempts_total',
    () =>
      new Counter({
        name: 'fleetwatch_alert_delivery_attempts_total',
        help: 'Notification delivery attempts (test-sends included), by channel type and outcome (delivered, retrying, failed, skipped).',
        labelNames: ['channel_type', 'outcome'],
      }),
  );
  readonly seconds = lookup(
    'fleetwatch_alert_delivery_seconds',
    () =>
      new Histogram({
        name: 'fleetwatch_alert_delivery_seconds',
        help: 'Time of one notification send (HTTP exchange or SMTP session), by channel type.',
        labelNames: ['channel_type'],
        buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      }),
  );

  readonly rateLimitedAnswers = lookup(
    'fleetwatch_alert_delivery_rate_limited_total',
    () =>
      new Counter({
        name: 'fleetwatch_alert_delivery_rate_limited_total',
        help: 'Answers that paused a notification channel (429, or 503 with Retry-After), by channel type.',
        labelNames: ['channel_type'],
      }),
  );

  rateLimited(channelType: string): void {
    this.rateLimitedAnswers.inc({ channel_type: channelType });
  }

  record(channelType: string, outcome: string, durationMs: number, sent: boolean): void {
    this.attempts.inc({ channel_type: channelType, outcome });
    if (sent) this.seconds.observe({ channel_type: channelType }, durationMs / 1000);
  }
}
